"""Registers the ``afcot report`` and ``afcot audit`` commands."""

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


def _audit_options(parser: argparse.ArgumentParser) -> None:
    parser.description = ("afcot audit RUN [--sample N] [--seed S] [--out FILE]: write a page to label whether each "
                          "sampled CoT's CONCLUSION follows from its REASONING.  afcot audit score LABELS.json "
                          "[--run RUN]: the false-causality rate (95 % Wilson interval) and the causality check's "
                          "precision and recall against the labels (docs/algorithms.md).")
    parser.add_argument("run", metavar="RUN|score", help="run directory to sample, or 'score'")
    parser.add_argument("labels", nargs="?", metavar="LABELS.json", help="with score: the labels saved from the page")
    parser.add_argument("--sample", type=int, default=50, help="accepted CoT records to draw (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random sample (default 0)")
    parser.add_argument("--out", help="HTML file to write (default: RUN/audit.html)")
    parser.add_argument("--run", dest="score_run", metavar="RUN",
                        help="with score: the audited run (default: the one the labels file names)")
    parser.add_argument("--json", action="store_true", help="with score: print the figures as JSON")


def _audit(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from afcot_core.api import BadInput
    from afcot_report import audit

    if args.run == "score" and args.labels is not None:
        result, where = audit.score_file(Path(args.labels), Path(args.score_run) if args.score_run else None)
        print(json.dumps(result.as_dict(), indent=2) if args.json else audit.report(result, where))
        return 0
    if args.run == "score" and not Path("score").is_dir():
        raise BadInput("afcot audit score: give the labels file, e.g. afcot audit score audit-labels.json")
    if args.labels is not None or args.score_run or args.json:
        raise BadInput("afcot audit RUN takes --sample, --seed and --out; LABELS, --run and --json go with score")
    path = audit.write(Path(args.run), Path(args.out) if args.out else None, args.sample, args.seed)
    print(f"wrote {path}: label each sample, save the labels, then: afcot audit score LABELS.json")
    return 0


@hookimpl
def register_commands(register):
    register("report", "write a self-contained HTML page about a run", _configure, _run)
    register("audit", "label whether sampled CoTs follow from their reasoning; score the labels", _audit_options,
             _audit)


@hookimpl
def variants_finished(out_dir, variants, log):
    from afcot_report.compare import variants_finished as compare

    compare(out_dir, variants, log)
