// Pipelined II=1 fixture with QFX's port protocol: y_0 = x_0 + x_1, y_1 = x_0 - x_1 on signed 8-bit codes,
// 9-bit signed results, latency 2 (inputs registered, then results registered). ap_ready = ap_start.
`timescale 1ns / 1ps
module addsub_pipe (
    input  wire       ap_clk,
    input  wire       ap_rst,
    input  wire       ap_start,
    output wire       ap_done,
    output wire       ap_idle,
    output wire       ap_ready,
    input  wire [7:0] x_0,
    input  wire [7:0] x_1,
    output wire [8:0] y_0,
    output wire       y_0_ap_vld,
    output wire [8:0] y_1,
    output wire       y_1_ap_vld
);
    reg signed [7:0] a, b;
    reg signed [8:0] sum, diff;
    reg [1:0] valid;

    always @(posedge ap_clk) begin
        if (ap_rst) begin
            valid <= 2'b00;
        end else begin
            valid <= {valid[0], ap_start};
        end
        a <= x_0;
        b <= x_1;
        sum <= {a[7], a} + {b[7], b};
        diff <= {a[7], a} - {b[7], b};
    end

    assign ap_ready = ap_start;
    assign ap_idle = ~ap_start & ~|valid;
    assign ap_done = valid[1];
    assign y_0 = sum;
    assign y_1 = diff;
    assign y_0_ap_vld = valid[1];
    assign y_1_ap_vld = valid[1];
endmodule
