"""Progress bars: log lines above the bar in a terminal, and an honest rate after a resume."""

import io
import re
import sys
import time

from structlog.testing import capture_logs

from afcot_core import log
from afcot_core.progress import Bar
from afcot_core.shards import ShardCounts


class Terminal(io.StringIO):
    """A stream that says it is a terminal, and replays what was written to it as the screen shows it."""

    def isatty(self) -> bool:
        return True

    def screen(self) -> list[str]:
        """The lines on screen: text overwrites, ``\\r``, ``\\n``, cursor up and erase-line move and clear."""
        rows: list[list[str]] = [[]]
        row = col = 0
        for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|.", self.getvalue(), re.DOTALL):
            if token == "\n":
                row, col = row + 1, 0
            elif token == "\r":
                col = 0
            elif token.startswith("\x1b["):
                arg, op = token[2:-1], token[-1]
                if op == "A":
                    row = max(row - int(arg or 1), 0)
                elif op == "K":
                    rows[row] = rows[row][:col] if arg in ("", "0") else []
            elif not token.startswith("\x1b"):
                line = rows[row]
                line.extend(" " * (col + 1 - len(line)))
                line[col] = token
                col += 1
            rows.extend([] for _ in range(row + 1 - len(rows)))
        return ["".join(r).rstrip() for r in rows]


def test_log_lines_print_above_the_bar_never_into_its_line(monkeypatch):
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "160")
    for var in ("NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR"):
        monkeypatch.delenv(var, raising=False)
    log.console.cache_clear()
    log.configure()
    try:
        with Bar("generate", 40, enabled=True) as bar:
            for n in range(40):
                bar.record("accepted")
                if n % 8 == 0:
                    log.get().info("shard written", shard=n // 8)
                    time.sleep(0.06)  # let the bar redraw between log lines
    finally:
        log.console.cache_clear()
        log.configure()
    screen = [line for line in term.screen() if line]
    logged = [line for line in screen if "shard written" in line]
    assert len(logged) == 5, screen
    for line in logged:
        assert "generate" not in line and "━" not in line and "it/s" not in line, line
    assert "40/40" in screen[-1]


def test_a_resumed_stage_counts_only_its_own_work_in_the_rate():
    started = time.monotonic()
    with capture_logs() as events, Bar("generate", 1010, enabled=False) as bar:
        for _ in range(10):  # ten shards finished by an earlier run
            bar.advance(ShardCounts(accepted=90, rejected=10))
        for _ in range(5):
            time.sleep(0.02)
            bar.record("accepted")
        rate = bar.rate
        elapsed = time.monotonic() - started  # taken after the rate, so at least the bar's own elapsed time
        fields = dict(bar._progress.tasks[0].fields)
    assert rate is not None and 5 / elapsed <= rate <= 5 / 0.1  # five items in at least 0.1 s, not a thousand
    assert fields["rate"].endswith(" it/s") and float(fields["rate"].split()[0]) <= 5 / 0.1
    assert fields["resumed"] == "(10 shards done before)"
    assert bar.counts.items == 1005
    [resumed] = [e for e in events if e["event"] == "resumed"]
    assert (resumed["shards_skipped"], resumed["items_skipped"], resumed["items_done"]) == (10, 1000, 5)


def test_items_resumed_one_by_one_stay_out_of_the_rate():
    with Bar("af-reasoning-eval", 102, enabled=False) as bar:
        for _ in range(50):
            bar.record("accepted", resumed=True)
        bar.advance(ShardCounts(accepted=50), shards=0)  # e.g. training steps of an earlier run
        time.sleep(0.05)
        bar.record("rejected")
        assert bar.rate is not None and bar.rate <= 1 / 0.05
        assert bar._progress.tasks[0].fields["resumed"] == "(100 items done before)"
    assert bar.counts.items == 101 and bar.done_here == 1
