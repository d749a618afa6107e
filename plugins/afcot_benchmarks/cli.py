"""``afcot bench score BENCHMARK FILE`` and ``afcot bench run BENCHMARK --model NAME``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from afcot_core.api import BadInput


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench_action", required=True, metavar="ACTION")
    s = sub.add_parser("score", help="score an official prediction file; print tables, write JSON")
    s.add_argument("benchmark", help="a registered benchmark: af-reasoning-eval, mmau, mmar, embedded-eval")
    s.add_argument("file", help="predictions in the benchmark's official format")
    s.add_argument("--json", dest="json_out", metavar="OUT", help="write the scores here (and OUT.md)")
    s.add_argument("--extract", action=argparse.BooleanOptionalAction, default=None,
                   help="take the last CONCLUSION of each prediction first (default: the benchmark's rule; "
                        "off for MMAU/MMAR, as the official scripts)")
    s.add_argument("--skip-missing", action="store_true",
                   help="leave items without a prediction out of the denominators (official local scripts)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a benchmark config value")

    r = sub.add_parser("run", help="run a registered teacher_alm over a benchmark and score it")
    r.add_argument("benchmark", help="a registered benchmark")
    r.add_argument("--model", required=True, help="a registered teacher_alm, e.g. embedded-alm")
    r.add_argument("--out", help="output folder (default runs/bench/<benchmark>-<model>); reruns resume")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="benchmark.KEY=VALUE or model.KEY=VALUE, e.g. benchmark.data_dir=/data/mmau")
    r.add_argument("--limit", type=int, default=0, help="evaluate only the first N items")
    r.add_argument("--cot", action=argparse.BooleanOptionalAction, default=True,
                   help="append the CoT suffix to the prompts (default on)")
    r.add_argument("--format", choices=["benchmark", "trained"], default="benchmark",
                   help="benchmark: each benchmark's own prompt; trained: options inline, as afcot trains students")
    r.add_argument("--layout", choices=["inline", "model-card"], default="inline",
                   help="with --format trained: the options' layout the student was trained with (train.prompt_layout)")
    r.add_argument("--repair", action="store_true", help="regenerate once if </CONCLUSION> is missing (AF2)")
    r.add_argument("--concurrency", type=int, default=64, help="items in flight at once")
    r.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    r.add_argument("--quiet", action="store_true", help="no progress bar or console log")


def run(args: argparse.Namespace) -> int:
    return score_command(args) if args.bench_action == "score" else run_command(args)


def _overrides(pairs: list[str], prefix: str = "") -> dict[str, Any]:
    from afcot_core.api import apply_overrides

    for pair in pairs:
        if prefix and not pair.startswith(prefix):
            raise BadInput(f"--set {pair!r}: expected benchmark.KEY=VALUE or model.KEY=VALUE")
    return apply_overrides({}, pairs)


def score_command(args: argparse.Namespace) -> int:
    from afcot_benchmarks.scoring import score
    from afcot_core.api import convert, default_plugins

    registration = default_plugins().registry("benchmark").get(args.benchmark, where="bench score")
    benchmark = registration.build(convert(_overrides(args.set), registration.config, "bench score --set"))
    pairs = benchmark.read_predictions(Path(args.file))
    if not pairs:
        raise BadInput(f"{args.file}: holds no items")
    if not any(item.answer for item, _ in pairs):
        raise BadInput(f"{args.file}: every answer is empty (withheld, as in MMAU test); it is scored upstream")
    extract = benchmark.extract_on_score if args.extract is None else args.extract
    report = score(benchmark, pairs, extract=extract, skip_missing=args.skip_missing)
    title = f"{benchmark.name}: {Path(args.file).name}"
    print(report.to_markdown(title))
    n = len(pairs)
    if report.missing_ids:
        print(f"warning: {len(report.missing_ids)} of {n} items have no prediction and count as wrong "
              f"(first: {report.missing_ids[0]}); --skip-missing leaves them out", file=sys.stderr)
    if report.skipped_ids:
        print(f"warning: {len(report.skipped_ids)} of {n} items have no prediction and were left out "
              f"of every denominator (first: {report.skipped_ids[0]})", file=sys.stderr)
    if args.json_out:
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        out.with_suffix(".md").write_text(report.to_markdown(title), encoding="utf-8")
    return 0


def run_command(args: argparse.Namespace) -> int:
    from afcot_benchmarks.stage import EvaluateStage
    from afcot_core.api import Bar, configure_log, default_plugins, get_logger, out_folder

    values = _overrides(args.set, prefix="")
    unknown = [k for k in values if k not in ("benchmark", "model")]
    if unknown:
        raise BadInput(f"--set {unknown[0]}...: expected benchmark.KEY=VALUE or model.KEY=VALUE")
    table = {"cot": args.cot, "format": args.format, "prompt_layout": args.layout, "repair": args.repair,
             "concurrency": args.concurrency,
             "limit": args.limit, "plots": not args.no_plots, "model": {**values.get("model", {}), "use": args.model},
             "benchmarks": [{**values.get("benchmark", {}), "use": args.benchmark}]}
    plugins = default_plugins()
    section = EvaluateStage().parse(table, plugins)
    problems = [p for c in section.components() for p in c.preflight()]
    if problems:
        raise BadInput("cannot start, inputs are missing:\n  " + "\n  ".join(problems))
    out = out_folder(args.out or str(Path("runs") / "bench" / f"{args.benchmark}-{args.model}"))
    configure_log(out / "logs" / "bench.jsonl", quiet=args.quiet)
    results = section.run_into(out, get_logger().bind(command="bench run"),
                               lambda name, total: Bar(name, total, not args.quiet))
    for summary in results.values():
        report = Path(summary["dir"]) / "report.md"
        if report.exists():
            print(report.read_text(encoding="utf-8"))
    print(json.dumps(results, indent=2))
    return 0
