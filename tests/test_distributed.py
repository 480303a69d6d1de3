"""QFX models train under DistributedDataParallel: 2 CPU processes (gloo), learned formats stay in sync."""

import os
import socket
import tempfile
import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from qfx.quantize import QuantizeConfig, quantize_


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    return quantize_(model, QuantizeConfig(mode="qat"), torch.rand(32, 1, 8, 8))


# Whole test (two process start-ups, 5 steps each) takes a few seconds; past this something is stuck.
DEADLINE_S = 300


def _loopback() -> str | None:
    """The loopback interface's name, so gloo never picks an address from the host name (unreachable on some CI)."""
    names = [name for _, name in socket.if_nameindex()]
    return next((n for n in names if n == "lo"), next((n for n in names if n.startswith("lo")), None))


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    loopback = _loopback()
    if loopback:
        os.environ["GLOO_SOCKET_IFNAME"] = loopback
    try:
        dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))
        dist.barrier()
    except RuntimeError as error:  # the machine's networking, not QFX: the test skips
        with open(os.path.join(out_dir, f"rank{rank}.rendezvous"), "w") as f:
            f.write(f"{type(error).__name__}: {error}".splitlines()[0])
        return
    torch.set_num_threads(1)
    model = nn.parallel.DistributedDataParallel(_model())
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(100 + rank)  # each rank sees different data
    for _ in range(5):
        x, y = torch.rand(16, 1, 8, 8, generator=gen) * 4, torch.randint(0, 10, (16,), generator=gen)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    formats = {
        name: [str(f) for f in m.formats()]
        for name, m in model.module.named_modules()
        if hasattr(m, "formats")
    }
    params = {n: p.detach().clone() for n, p in model.module.named_parameters()}
    torch.save({"formats": formats, "params": params}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def _run_with_deadline(world: int, port: int, out_dir: str) -> None:
    """Spawn the ranks and join them; past DEADLINE_S kill them and fail: a stuck rendezvous never hangs the suite."""
    context = mp.start_processes(_worker, args=(world, port, out_dir), nprocs=world, join=False)
    deadline = time.monotonic() + DEADLINE_S
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
                process.join()
            pytest.fail(f"DDP ranks still running after {DEADLINE_S} s (gloo on 127.0.0.1:{port}); killed")
    failed = sorted(f for f in os.listdir(out_dir) if f.endswith(".rendezvous"))
    if failed:
        with open(os.path.join(out_dir, failed[0])) as f:
            pytest.skip(f"gloo cannot connect two processes over loopback on this machine: {f.read()}")


def test_ddp_two_processes_keep_formats_in_sync() -> None:
    with tempfile.TemporaryDirectory() as out_dir:
        _run_with_deadline(2, _free_port(), out_dir)
        r0, r1 = (torch.load(os.path.join(out_dir, f"rank{r}.pt")) for r in (0, 1))
    assert r0["formats"] == r1["formats"]
    assert r0["formats"]  # there are learned formats to compare
    for name, p in r0["params"].items():
        assert torch.equal(p, r1["params"][name]), name
    initial = dict(_model().named_parameters())
    moved = [n for n, p in r0["params"].items() if n.endswith("frac_bits") and not torch.equal(p, initial[n])]
    assert moved, "no binary point moved: the test would not show that they are kept in sync"
