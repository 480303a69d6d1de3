// Registered 8x8 signed multiply of two variables: Yosys maps it to one DSP slice.
module mul8 (
    input  wire               clk,
    input  wire signed [ 7:0] a,
    input  wire signed [ 7:0] b,
    output reg  signed [15:0] p
);
  reg signed [7:0] a_r, b_r;
  always @(posedge clk) begin
    a_r <= a;
    b_r <= b;
    p   <= a_r * b_r;
  end
endmodule
