// Broken fixture: raises both _ap_vld one cycle after ap_start, but y_1 is never driven (X on Icarus).
`timescale 1ns / 1ps
module x_output (
    input  wire       ap_clk,
    input  wire       ap_rst,
    input  wire       ap_start,
    output wire       ap_done,
    output wire       ap_idle,
    output wire       ap_ready,
    input  wire [7:0] x_0,
    input  wire [7:0] x_1,
    output reg  [8:0] y_0,
    output wire       y_0_ap_vld,
    output reg  [8:0] y_1,
    output wire       y_1_ap_vld
);
    reg valid;
    always @(posedge ap_clk) begin
        valid <= ap_rst ? 1'b0 : ap_start;
        y_0 <= {x_0[7], x_0};
    end
    assign ap_ready = ap_start;
    assign ap_idle = ~valid;
    assign ap_done = valid;
    assign y_0_ap_vld = valid;
    assign y_1_ap_vld = valid;
endmodule
