// HLS-like fixture: three cycles per vector, the way a vendor HLS design with ap_ctrl_hs may behave.
// Inputs are unsigned 8-bit codes; y_0 = x_0 * x_1 and y_1 = x_0 + x_1 as unsigned 16-bit codes.
// ap_ready pulses (combinationally, with ap_start) in the cycle the inputs are read; y_0_ap_vld is raised one
// cycle later and y_1_ap_vld (with ap_done) the cycle after that, so the two outputs never share a cycle.
`timescale 1ns / 1ps
module hls_like (
    input  wire        ap_clk,
    input  wire        ap_rst,
    input  wire        ap_start,
    output wire        ap_done,
    output wire        ap_idle,
    output wire        ap_ready,
    input  wire [7:0]  x_0,
    input  wire [7:0]  x_1,
    output reg  [15:0] y_0,
    output wire        y_0_ap_vld,
    output reg  [15:0] y_1,
    output wire        y_1_ap_vld
);
    localparam READ = 2'd0, MUL = 2'd1, ADD = 2'd2;
    reg [1:0] state;
    reg [7:0] a, b;

    always @(posedge ap_clk) begin
        if (ap_rst) begin
            state <= READ;
        end else begin
            case (state)
                READ: if (ap_start) begin
                    a <= x_0;
                    b <= x_1;
                    state <= MUL;
                end
                MUL: state <= ADD;
                default: state <= READ;
            endcase
        end
    end

    always @(*) begin
        y_0 = a * b;
        y_1 = a + b;
    end

    assign ap_ready = (state == READ) & ap_start;
    assign ap_idle = (state == READ) & ~ap_start;
    assign y_0_ap_vld = (state == MUL);
    assign y_1_ap_vld = (state == ADD);
    assign ap_done = (state == ADD);
endmodule
