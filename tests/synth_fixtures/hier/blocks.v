// Two layer modules: a shift-add stage (instantiated twice by the top) and a multiply stage.
module hier_sa (
    input  wire               clk,
    input  wire signed [ 7:0] x,
    output reg  signed [12:0] y
);
  always @(posedge clk) y <= (x <<< 4) + (x <<< 3) - (x <<< 1) + x;
endmodule

module hier_mul (
    input  wire               clk,
    input  wire signed [ 7:0] a,
    input  wire signed [ 7:0] b,
    output reg  signed [15:0] p
);
  always @(posedge clk) p <= a * b;
endmodule
