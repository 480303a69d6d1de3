"""Progress display for the command line: a rich progress bar for every long step, then one line per finished step
(with its time), so a log read later shows what ran and how long it took."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["Step", "Steps"]


class Step:
    """A running step: call it to advance its bar; ``bar`` adds a sub-bar and returns its ``advance``."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self._task = progress, task

    def __call__(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def describe(self, text: str) -> None:
        """Replace the step's description (e.g. to name the link now running)."""
        self._progress.update(self._task, description=escape(text))

    def bar(self, title: str, total: int | None) -> Callable[[], None]:
        task = self._progress.add_task(escape(f"  {title}"), total=total)
        return lambda: self._progress.advance(task, 1)


class Steps:
    """Shows steps on stderr as they run; ``quiet`` keeps only errors."""

    def __init__(self, *, quiet: bool = False, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.quiet = quiet
        self.timings: dict[str, float] = {}

    def _progress(self) -> Progress:
        return Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            disable=self.quiet or not self.console.is_terminal,  # logs get the one-line summaries only
        )

    @contextlib.contextmanager
    def step(self, title: str, total: int | None = None) -> Iterator[Step]:
        """A step with a bar of ``total`` units (a spinner when None); yields a :class:`Step` to advance it and to
        add more bars under it (``step.bar(title, total)``, the ``progress`` callback the library functions take)."""
        start = time.perf_counter()
        with self._progress() as progress:
            handle = Step(progress, progress.add_task(escape(title), total=total))
            try:
                yield handle
            except BaseException:
                progress.stop()
                if not self.quiet:
                    self.console.print(f"[red]✗[/] {escape(title)}")
                raise
        seconds = time.perf_counter() - start
        self.timings[title] = self.timings.get(title, 0.0) + seconds
        if not self.quiet:
            self.console.print(f"[green]✓[/] {escape(title)} [dim]({seconds:.1f} s)[/]")

    def info(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text)
