// qfx_fifo: a first-word-fall-through FIFO with valid/ready on both sides (AXI4-Stream style handshake).
//
// DEPTH words of W bits in a memory with a registered read (the block RAM / LUT RAM read port: Yosys maps a deep
// FIFO to block RAM), plus the output register m_data: DEPTH + 1 words in all. s_ready is high while the memory
// has room, m_valid while the output register holds a word. Sustains one word per clock in and out; a word
// written into an empty FIFO appears at m_data two clocks later. Part of QFX's Verilog library (hls/rtl).
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
    output reg          m_valid,
    input  wire         m_ready,
    output reg  [W-1:0] m_data
);
    localparam AW = DEPTH > 1 ? $clog2(DEPTH) : 1;
    reg [W-1:0] mem [0:DEPTH-1];
    reg [AW-1:0] wr, rd;
    reg [AW:0] count;  // words in the memory
    wire push = s_valid && s_ready;
    wire load = count != 0 && (!m_valid || m_ready);  // memory -> output register
    assign s_ready = count != DEPTH;
    always @(posedge clk) begin
        if (push) mem[wr] <= s_data;
        if (load) m_data <= mem[rd];
    end
    always @(posedge clk) begin
        if (rst) begin
            wr <= 0;
            rd <= 0;
            count <= 0;
            m_valid <= 0;
        end else begin
            if (push) wr <= (wr == DEPTH - 1) ? 0 : wr + 1'b1;
            if (load) rd <= (rd == DEPTH - 1) ? 0 : rd + 1'b1;
            count <= count + push - load;
            if (load) m_valid <= 1;
            else if (m_ready) m_valid <= 0;
        end
    end
endmodule
`default_nettype wire
