"""Commands never lose or silently change their inputs: what the command line checks before it starts work.

* :func:`refuse_overlap`: an output that equals or contains an input (``qfx hls run/model.qfx -o run --force``)
  is refused before anything is written; :func:`refuse_inside`: an output file inside a folder the command checks
  (``qfx verify --hls prj --record prj/results.json``) is refused too.
* :func:`load_batch`: ``--inputs X.npy`` is read as it is (float64 stays float64); complex, empty, non-finite,
  text and non-``.npy`` files each get one clear error.
* :func:`terminate_as_interrupt`: SIGTERM is handled like Ctrl-C (staging folders and temporary exports are
  removed by the code that made them) and the command's child processes (``make``, compilers) are stopped.
* :func:`locked`: an exclusive lock for read-modify-write of a shared file (``--record`` into results.json).
* :func:`check_count`, :func:`check_rate`: numeric options are checked, never silently replaced.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

__all__ = ["check_count", "check_rate", "load_batch", "locked", "publish", "refuse_inside", "refuse_overlap",
           "terminate_as_interrupt"]  # fmt: skip

NPY_MAGIC = b"\x93NUMPY"


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def refuse_overlap(outputs: Sequence[tuple[str, Path]], inputs: Sequence[tuple[str, Path]]) -> None:
    """Raise ``ValueError`` when an output (what, path) is an input, or a folder output contains one."""
    for out_what, out in outputs:
        o = _real(out)
        for in_what, inp in inputs:
            i = _real(inp)
            same = o == i or (o.exists() and i.exists() and os.path.samefile(o, i))
            if same or o in i.parents:
                how = "is" if same else "contains"
                raise ValueError(f"{out_what} {out} {how} the {in_what} {inp}: it would be "
                                 f"{'overwritten' if same else 'deleted'}; choose another output")  # fmt: skip


def refuse_inside(outputs: Sequence[tuple[str, Path]], folders: Sequence[tuple[str, Path]]) -> None:
    """Raise ``ValueError`` when an output (what, path) lies inside one of ``folders`` (what, path), the folders a
    command reads and vouches for: writing there would change what was just checked (symbolic links resolved)."""
    for out_what, out in outputs:
        o = _real(out)
        for in_what, folder in folders:
            if _real(folder) in o.parents:
                raise ValueError(f"{out_what} {out} lies inside the {in_what} {folder} being verified: writing it "
                                 "would change that folder; choose another output")  # fmt: skip


def load_batch(path: str | os.PathLike, what: str = "--inputs") -> np.ndarray:
    """A numeric batch (N, ...) from a ``.npy`` file, with its dtype kept (float64 stays float64)."""
    p = Path(path)
    where = f"{what} {path}"
    if not p.exists():
        raise FileNotFoundError(f"{where}: no such file")
    if not p.is_file():
        raise ValueError(f"{where}: not a regular file")
    with p.open("rb") as f:
        head = f.read(len(NPY_MAGIC))
    if head != NPY_MAGIC:
        kind = "an empty file" if not head else "not a .npy file (write one with numpy.save)"
        raise ValueError(f"{where}: {kind}")
    try:
        x = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{where}: not a readable .npy file ({reason})") from None
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{where}: holds several arrays; give one batch")
    if x.dtype.kind == "c":
        raise ValueError(f"{where}: complex values ({x.dtype}); the model takes real numbers")
    if x.dtype.kind not in "iuf":
        raise ValueError(f"{where}: expected a numeric batch (N, ...), not {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{where}: expected a batch of shape (N, ...), not {x.shape}")
    if x.size == 0:
        raise ValueError(f"{where}: the batch is empty (shape {x.shape})")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = x[~np.isfinite(x)].flat[0]
        raise ValueError(f"{where}: holds {bad} (every input must be a finite number)")
    return x


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


def _children(pid: int) -> list[int]:
    """Every descendant process of ``pid`` (Linux /proc; empty elsewhere)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_children() -> None:
    """Send SIGTERM to every process this one started (directly or not)."""
    for child in _children(os.getpid()):
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGTERM)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM stops the child processes and raises :class:`Terminated` (a KeyboardInterrupt),
    so every ``finally`` and context manager cleans up as for Ctrl-C."""

    def handler(_signum, _frame) -> None:
        stop_children()
        raise Terminated()

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for updating ``path`` during the block: a lock on its folder, so that no lock file is
    left behind and the file itself may be replaced atomically inside the block (POSIX; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent writers are not protected there
        yield
        return
    fd = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def publish(tmp: Path, out: Path, *, replace: bool) -> None:
    """Move the finished file ``tmp`` to ``out`` (same folder). Without ``replace`` it is an exclusive create: a
    file another run wrote there meanwhile is kept and :class:`FileExistsError` says so."""
    if replace:
        os.replace(tmp, out)
        return
    try:
        os.link(tmp, out)  # atomic, and fails when ``out`` exists
    except FileExistsError:
        raise FileExistsError(f"{out} was written by another run meanwhile; left it as it is") from None
    except OSError:  # a file system without hard links: the check just before is the best there is
        if out.exists():
            raise FileExistsError(f"{out} was written by another run meanwhile; left it as it is") from None
        os.replace(tmp, out)
    else:
        tmp.unlink()


def check_count(name: str, value: int | None, minimum: int) -> None:
    """``value`` must be None or an integer >= ``minimum``; the error names the option and the value."""
    if value is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value}")


def check_rate(name: str, value: float, *, zero_ok: bool = False) -> None:
    """``value`` must be a finite number > 0 (>= 0 with ``zero_ok``)."""
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise ValueError(f"{name} must be a finite number {'>= 0' if zero_ok else '> 0'}, not {value}")


#: Numeric command-line options: (attribute, option, minimum) for counts, (attribute, option, zero allowed) for rates.
COUNTS = (("epochs", "--epochs", 0), ("qat_epochs", "--qat-epochs", 0), ("threads", "--threads", 1),
          ("width", "--width", 1), ("input_width", "--input-width", 1), ("weight_width", "--weight-width", 1),
          ("activation_width", "--activation-width", 1), ("bias_width", "--bias-width", 1), ("khot", "--khot", 0),
          ("limit", "--limit", 1), ("register_every", "--register-every", 0))  # fmt: skip
RATES = (("lr", "--lr", False), ("qat_lr", "--qat-lr", False), ("binary_point_lr", "--binary-point-lr", True),
         ("timeout", "--timeout", False))  # fmt: skip


def check_options(args: object) -> None:
    """Check every numeric option ``args`` has (an argparse namespace) before any work starts."""
    for attr, option, minimum in COUNTS:
        check_count(option, getattr(args, attr, None), minimum)
    for attr, option, zero_ok in RATES:
        value = getattr(args, attr, None)
        if value is not None:
            check_rate(option, value, zero_ok=zero_ok)
