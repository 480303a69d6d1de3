// Top: two instances of hier_sa, one of hier_mul, plus a registered sum of its own (glue logic).
module hier (
    input  wire               clk,
    input  wire signed [ 7:0] a,
    input  wire signed [ 7:0] b,
    output wire signed [12:0] y0,
    output wire signed [12:0] y1,
    output wire signed [15:0] p,
    output reg  signed [13:0] s
);
  hier_sa  u_sa0 (.clk(clk), .x(a), .y(y0));
  hier_sa  u_sa1 (.clk(clk), .x(b), .y(y1));
  hier_mul u_mul (.clk(clk), .a(a), .b(b), .p(p));
  always @(posedge clk) s <= y0 + y1;
endmodule
