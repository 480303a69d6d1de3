"""``python -m qfx.tour``: a short tour of the fixed-point core on bundled (generated) data.

Shows formats and their ranges, every quantization and overflow mode on a few values, a float pitfall QFX avoids,
and a tiny network whose quantizers learn where their binary points sit.
"""

from __future__ import annotations

import math

import torch
from torch import nn

import qfx
from qfx import FixedFormat, Overflow, Quant
from qfx.nn import FixedQuantizer


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    rule = "-+-".join("-" * w for w in widths)
    body = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, rule, *body])


def show_formats() -> None:
    print("\n== Formats: ap_fixed<W, I> has W bits, I of them integer bits (sign included)")
    rows = []
    for text in ["ap_fixed<8,3>", "ap_ufixed<6,2>", "ap_fixed<4,-2,AP_RND,AP_SAT>", "ap_fixed<16,20,AP_RND_CONV>"]:
        f = FixedFormat.parse(text)
        rows.append([str(f), str(f.frac_bits), f"{f.lsb:g}", f"{f.min:g}", f"{f.max:g}"])
    print(_table(["type", "frac bits", "LSB", "min", "max"], rows))


def show_modes() -> None:
    print("\n== Quantization modes: +-1.25 into ap_fixed<4,3,Q,AP_SAT> (LSB 0.5)")
    x = torch.tensor([1.25, -1.25])
    rows = []
    for q in Quant:
        y = qfx.cast(x, FixedFormat(4, 3, quant=q, overflow=Overflow.SAT))
        rows.append([q.cpp, f"{y[0].item():+.2f}", f"{y[1].item():+.2f}"])
    print(_table(["mode", "+1.25", "-1.25"], rows))

    print("\n== Overflow modes: values into ap_fixed<4,2,AP_TRN,O,N> (range -2 .. 1.75)")
    x = torch.tensor([2.5, -3.0, 5.25, -2.0])
    rows = []
    for o in Overflow:
        for n in [0, 1, 2] if o.wraps else [0]:
            f = FixedFormat(4, 2, quant=Quant.TRN, overflow=o, sat_bits=n)
            rows.append([f"{o.cpp}, N={n}", *(f"{v:+.2f}" for v in qfx.cast(x, f).tolist())])
    print(_table(["mode", *(f"{v:+.2f}" for v in x.tolist())], rows))
    y = qfx.cast(torch.tensor([3.99]), "ap_fixed<8,3,AP_RND,AP_WRAP>")
    print(f"\nA rounding carry can overflow: 3.99 -> ap_fixed<8,3,AP_RND,AP_WRAP> = {y.item():g}")


def show_pitfall() -> None:
    print("\n== Exact where naive float32 rounding is not")
    x = torch.tensor([0.5 - 2.0**-25], dtype=torch.float32)
    naive = torch.floor(x * 2**0 + 0.5)
    exact = qfx.cast(x, "ap_fixed<8,8,AP_RND,AP_SAT>")
    print(f"x = 0.5 - 2^-25: floor(x + 0.5) in float32 = {naive.item():g}, qfx.cast(.., AP_RND) = {exact.item():g}")
    big = torch.tensor([2.0**24 + 1.0], dtype=torch.float64)
    print(f"2^24 + 1 into ap_fixed<26,26>: {qfx.cast(big, 'ap_fixed<26,26>').item():.0f} (computed in float64)")


class TinyNet(nn.Module):
    """A 1-16-1 MLP whose input, hidden activation and output are fixed-point with learned binary points."""

    def __init__(self) -> None:
        super().__init__()
        self.q_in = FixedQuantizer("ap_fixed<8,1,AP_RND,AP_SAT>")
        self.fc1 = nn.Linear(1, 16)
        self.q_hidden = FixedQuantizer("ap_fixed<8,1,AP_RND,AP_SAT>")
        self.fc2 = nn.Linear(16, 1)
        self.q_out = FixedQuantizer("ap_fixed<8,6,AP_RND,AP_SAT>")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(self.q_in(x)))
        return self.q_out(self.fc2(self.q_hidden(h)))


def show_learning(steps: int = 600) -> None:
    print("\n== A tiny network learns its binary points: fit y = x + sin(3x)/2 for x in [-3, 3]")
    torch.manual_seed(0)
    x = torch.linspace(-3, 3, 512).unsqueeze(1)
    y = x + 0.5 * torch.sin(3 * x)
    net = TinyNet()
    before = {n: str(m.format) for n, m in net.named_modules() if isinstance(m, FixedQuantizer)}
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for step in range(steps):
        loss = nn.functional.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 150 == 0 or step == steps - 1:
            print(f"  step {step:4d}  mse {loss.item():.5f}")
    rows = [[n, before[n], str(m.format)] for n, m in net.named_modules() if isinstance(m, FixedQuantizer)]
    print(_table(["quantizer", "initial format", "learned format"], rows))
    out = net(x)
    lsb = net.q_out.format.lsb
    assert torch.equal(out, torch.round(out / lsb) * lsb), "outputs are not on the output format's grid"
    print(f"Every output is a multiple of the learned LSB {lsb:g} (checked); rmse {math.sqrt(loss.item()):.4f}")


def main() -> None:
    print(f"QFX {qfx.__version__}: exact ap_fixed arithmetic in PyTorch {torch.__version__}")
    show_formats()
    show_modes()
    show_pitfall()
    show_learning()


if __name__ == "__main__":
    main()
