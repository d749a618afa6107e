"""Progress bars with rate, ETA and accepted / rejected / failed counts.

The rate and the ETA count only the items worked on by this process: shards finished by an earlier run
(a resume) move the bar but not the rate, and the bar says how many shards were skipped. Output that is not a
terminal (a file, a pipe) gets no live bar, which would be cut to its width, but one plain line at the end.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from afcot_core import log
from afcot_core.shards import ShardCounts


class Bar:
    """A progress bar for one stage; ``record`` counts one item's verdict, ``advance`` a shard done before."""

    def __init__(self, name: str, total: int | None, enabled: bool) -> None:
        self.name = name
        self.total = total
        self.counts = ShardCounts()
        self.skipped_shards = 0
        self.skipped_items = 0
        self.done_here = 0
        self._started = time.monotonic()
        self._plain = enabled and not log.console().is_terminal
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("[cyan]{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            TextColumn("[green]✓{task.fields[accepted]} [yellow]✗{task.fields[rejected]} [red]!{task.fields[failed]}"),
            TextColumn("[dim]{task.fields[resumed]}"),
            console=log.console(),
            disable=not enabled or self._plain,
            transient=False,
        )
        self._task = self._progress.add_task(name, total=total, accepted=0, rejected=0, failed=0, rate="",
                                             eta="-:--:--", resumed="")

    def __enter__(self) -> Bar:
        self._started = time.monotonic()
        self._progress.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._progress.stop()
        if self._plain:
            f = self._progress.tasks[0].fields
            log.console().print(f"{self.name} {self.counts.items}/{self.total or '?'} {f['rate']} ✓{f['accepted']} "
                                f"✗{f['rejected']} !{f['failed']} {f['resumed']}".rstrip(), markup=False,
                                highlight=False, soft_wrap=True)
        if self.skipped_items:
            log.get().info("resumed", stage=self.name, shards_skipped=self.skipped_shards,
                           items_skipped=self.skipped_items, items_done=self.done_here)

    @property
    def rate(self) -> float | None:
        """Items per second worked on by this process; None before the first."""
        elapsed = time.monotonic() - self._started
        return self.done_here / elapsed if self.done_here and elapsed > 0 else None

    def eta(self) -> str:
        """Time left at this process's rate, as h:mm:ss; dashes while unknown."""
        rate = self.rate
        if rate is None or self.total is None:
            return "-:--:--"
        seconds = int(max(self.total - self.counts.items, 0) / rate)
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def _refresh(self, advance: int) -> None:
        rate = self.rate
        resumed = (f"({self.skipped_shards} shards done before)" if self.skipped_shards
                   else f"({self.skipped_items} items done before)" if self.skipped_items else "")
        self._progress.update(self._task, advance=advance, accepted=self.counts.accepted,
                              rejected=self.counts.rejected, failed=self.counts.failed, eta=self.eta(),
                              rate=f"{rate:.1f} it/s" if rate is not None else "", resumed=resumed)

    def record(self, verdict: str, resumed: bool = False) -> None:
        """Count one item's verdict; ``resumed``: an item finished by an earlier run (not in the rate)."""
        setattr(self.counts, verdict, getattr(self.counts, verdict) + 1)
        if resumed:
            self.skipped_items += 1
        else:
            self.done_here += 1
        self._refresh(1)

    def advance(self, done: ShardCounts, shards: int = 1) -> None:
        """Count work finished by an earlier run: ``shards`` shards holding ``done`` (0 when the unit is not a
        shard, e.g. training steps). It moves the bar but not the rate."""
        self.counts.add(done)
        self.skipped_shards += shards
        self.skipped_items += done.items
        self._refresh(done.items)
