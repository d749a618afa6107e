"""Registers the ``afcot report`` command."""

from __future__ import annotations

import argparse

from afcot_core.api import hookimpl


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory (the --out of `afcot recipe run`)")
    parser.add_argument("--out", help="HTML file to write (default: RUN/report.html)")
    parser.add_argument("--samples", type=int, default=3, help="accepted and rejected samples shown (default 3)")


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from afcot_report.page import write

    path = write(Path(args.run), Path(args.out) if args.out else None, samples=args.samples)
    print(f"wrote {path}")
    return 0


@hookimpl
def register_commands(register):
    register("report", "write a self-contained HTML page about a run", _configure, _run)
