// Broken fixture: accepts inputs (ap_ready = ap_start) but never raises ap_done or an output's ap_vld.
`timescale 1ns / 1ps
module never_done (
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
    always @(posedge ap_clk) begin
        y_0 <= {x_0[7], x_0};
        y_1 <= {x_1[7], x_1};
    end
    assign ap_ready = ap_start;
    assign ap_idle = 1'b0;
    assign ap_done = 1'b0;
    assign y_0_ap_vld = 1'b0;
    assign y_1_ap_vld = 1'b0;
endmodule
