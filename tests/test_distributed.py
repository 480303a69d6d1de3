"""QFX models train under DistributedDataParallel: 2 CPU processes (gloo), learned formats stay in sync."""

import os
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from qfx.quantize import QuantizeConfig, quantize_

# Whole test (two process start-ups, 5 steps each) takes a few seconds; past this something is stuck.
DEADLINE_S = 150
# The stages a rank reports; until "connected" only torch and the machine's networking are involved, not QFX.
STAGES = ("started", "rendezvous", "connected", "trained", "saved")
# A rank that saved its results and has not exited this long after is stuck tearing gloo down: killed, results kept.
EXIT_GRACE_S = 20


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    return quantize_(model, QuantizeConfig(mode="qat"), torch.rand(32, 1, 8, 8))


def _loopback() -> str | None:
    """The loopback interface's name, so gloo never picks an address from the host name (unreachable on some CI)."""
    names = [name for _, name in socket.if_nameindex()]
    return next((n for n in names if n == "lo"), next((n for n in names if n.startswith("lo")), None))


def _loopback_works(timeout_s: float = 5.0) -> str | None:
    """None if one TCP connection over 127.0.0.1 carries a byte within ``timeout_s``; else why not."""
    try:
        with socket.create_server(("127.0.0.1", 0)) as server:
            server.settimeout(timeout_s)
            with socket.create_connection(server.getsockname(), timeout=timeout_s) as client:
                peer, _ = server.accept()
                with peer:
                    client.sendall(b"q")
                    peer.settimeout(timeout_s)
                    if peer.recv(1) != b"q":
                        return "a byte sent over 127.0.0.1 did not arrive"
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    return None


def _stage(out_dir: str, rank: int, stage: str) -> None:
    Path(out_dir, f"rank{rank}.stage").write_text(stage)


def _worker(rank: int, world: int, out_dir: str) -> None:
    _stage(out_dir, rank, "started")
    loopback = _loopback()
    if loopback:
        os.environ["GLOO_SOCKET_IFNAME"] = loopback
    try:
        # A file store for the rendezvous: no TCP store, no host name; gloo's own pairs use the loopback interface.
        _stage(out_dir, rank, "rendezvous")
        store = os.path.join(out_dir, "store")
        dist.init_process_group(
            "gloo", init_method=f"file://{store}", rank=rank, world_size=world, timeout=timedelta(seconds=60)
        )
        dist.barrier()
    except RuntimeError as error:  # the machine's networking, not QFX: the test skips
        Path(out_dir, f"rank{rank}.rendezvous").write_text(f"{type(error).__name__}: {error}".splitlines()[0])
        return
    _stage(out_dir, rank, "connected")
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
    _stage(out_dir, rank, "trained")
    formats = {name: [str(f) for f in m.formats()] for name, m in model.module.named_modules() if hasattr(m, "formats")}
    params = {n: p.detach().clone() for n, p in model.module.named_parameters()}
    torch.save({"formats": formats, "params": params}, os.path.join(out_dir, f"rank{rank}.pt"))
    _stage(out_dir, rank, "saved")
    dist.destroy_process_group()


def _stages(out_dir: str, world: int) -> list[str]:
    paths = [Path(out_dir, f"rank{rank}.stage") for rank in range(world)]
    return [p.read_text() if p.exists() else "not started" for p in paths]


def _run_with_deadline(world: int, out_dir: str) -> None:
    """Spawn the ranks and join them; past DEADLINE_S kill them. Stuck before gloo connected the ranks: the machine's
    networking (skip, saying where each rank was); stuck later: fail."""
    why = _loopback_works()
    if why:
        pytest.skip(f"TCP over 127.0.0.1 does not work on this machine, so gloo cannot either: {why}")
    context = mp.start_processes(_worker, args=(world, out_dir), nprocs=world, join=False)
    deadline = time.monotonic() + DEADLINE_S
    all_saved_at = None
    while not context.join(timeout=1.0):
        stages = _stages(out_dir, world)
        if all_saved_at is None and all(s == "saved" for s in stages):
            all_saved_at = time.monotonic()
        if all_saved_at is not None and time.monotonic() > all_saved_at + EXIT_GRACE_S:
            for process in context.processes:
                process.kill()
                process.join()
            return
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
                process.join()
            where = ", ".join(f"rank {r}: {s}" for r, s in enumerate(stages))
            if all(s not in STAGES[STAGES.index("connected") :] for s in stages):
                pytest.skip(f"gloo did not connect two processes over loopback within {DEADLINE_S} s ({where})")
            pytest.fail(f"DDP ranks still running after {DEADLINE_S} s ({where}); killed")
    failed = sorted(f for f in os.listdir(out_dir) if f.endswith(".rendezvous"))
    if failed:
        why = Path(out_dir, failed[0]).read_text()
        pytest.skip(f"gloo cannot connect two processes over loopback on this machine: {why}")


def test_ddp_two_processes_keep_formats_in_sync() -> None:
    with tempfile.TemporaryDirectory() as out_dir:
        _run_with_deadline(2, out_dir)
        r0, r1 = (torch.load(os.path.join(out_dir, f"rank{r}.pt")) for r in (0, 1))
    assert r0["formats"] == r1["formats"]
    assert r0["formats"]  # there are learned formats to compare
    for name, p in r0["params"].items():
        assert torch.equal(p, r1["params"][name]), name
    initial = dict(_model().named_parameters())
    moved = [n for n, p in r0["params"].items() if n.endswith("frac_bits") and not torch.equal(p, initial[n])]
    assert moved, "no binary point moved: the test would not show that they are kept in sync"
