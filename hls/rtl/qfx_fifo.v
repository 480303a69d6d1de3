// qfx_fifo: a first-word-fall-through FIFO with valid/ready on both sides (AXI4-Stream style handshake).
//
// DEPTH words of W bits; s_ready is high while the FIFO has room, m_valid while it holds a word, and m_data is
// the oldest word (read asynchronously: small FIFOs map to LUT RAM or registers). A word written into an empty
// FIFO is visible at the next clock. Part of QFX's Verilog library (hls/rtl). Verilog-2001, synthesizable.
`default_nettype none
module qfx_fifo #(
    parameter W = 8,
    parameter DEPTH = 2
) (
    input  wire         clk,
    input  wire         rst,
    input  wire         s_valid,
    output wire         s_ready,
    input  wire [W-1:0] s_data,
    output wire         m_valid,
    input  wire         m_ready,
    output wire [W-1:0] m_data
);
    localparam AW = DEPTH > 1 ? $clog2(DEPTH) : 1;
    reg [W-1:0] mem [0:DEPTH-1];
    reg [AW-1:0] wr, rd;
    reg [AW:0] count;
    wire push = s_valid && s_ready;
    wire pop = m_valid && m_ready;
    assign s_ready = count != DEPTH;
    assign m_valid = count != 0;
    assign m_data = mem[rd];
    always @(posedge clk) begin
        if (push) mem[wr] <= s_data;
        if (rst) begin
            wr <= 0;
            rd <= 0;
            count <= 0;
        end else begin
            if (push) wr <= (wr == DEPTH - 1) ? 0 : wr + 1'b1;
            if (pop) rd <= (rd == DEPTH - 1) ? 0 : rd + 1'b1;
            count <= count + push - pop;
        end
    end
endmodule
`default_nettype wire
