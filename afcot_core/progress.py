"""Progress bars with rate, ETA and accepted / rejected / failed counts."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from afcot_core.shards import ShardCounts


class Bar:
    """A progress bar for one stage; ``record`` counts one item's verdict."""

    def __init__(self, name: str, total: int | None, enabled: bool) -> None:
        self.counts = ShardCounts()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("[cyan]{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("[green]✓{task.fields[accepted]} [yellow]✗{task.fields[rejected]} [red]!{task.fields[failed]}"),
            console=Console(stderr=True),
            disable=not enabled,
            transient=False,
        )
        self._task = self._progress.add_task(name, total=total, accepted=0, rejected=0, failed=0, rate="")

    def __enter__(self) -> Bar:
        self._progress.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._progress.stop()

    def _refresh(self, advance: int) -> None:
        self._progress.update(self._task, advance=advance, accepted=self.counts.accepted,
                              rejected=self.counts.rejected, failed=self.counts.failed)
        task = self._progress.tasks[0]
        if task.speed:
            self._progress.update(self._task, rate=f"{task.speed:.1f} it/s")

    def record(self, verdict: str) -> None:
        setattr(self.counts, verdict, getattr(self.counts, verdict) + 1)
        self._refresh(1)

    def advance(self, done: ShardCounts) -> None:
        """Count a shard finished by an earlier run."""
        self.counts.add(done)
        self._refresh(done.items)
