// Not valid Verilog: the synthesis report must fail with the Yosys log's tail.
module broken (input wire a, output wire y);
  assign y = a +;
endmodule
