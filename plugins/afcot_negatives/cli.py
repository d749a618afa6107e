"""``afcot negatives``: analyze released MCQ distractors, build MCQ sets, sample negatives for a label."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import msgspec

from afcot_core.api import BadInput


def _sampler_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ontology", help="AudioSet-format ontology JSON (default: the bundled AudioSet one)")
    p.add_argument("--vocabulary", help="label file (.txt lines, .json list, FSD50K vocabulary.csv)")
    p.add_argument("--fallback", choices=("random", "nearest", "none"), default="random",
                   help="ontology sampler: what fills up after siblings and cousins")
    p.add_argument("--close", choices=("tiered", "pooled"), default="tiered",
                   help="ontology sampler: siblings before cousins, or both drawn together")
    p.add_argument("--seed", type=int, default=0)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="negatives_action", required=True)

    a = sub.add_parser("analyze", help="relate the distractors of an AF-Reasoning-Eval file to its answers")
    a.add_argument("file", help="AF-Reasoning-Eval JSON (e.g. Classification_mini.json)")
    _sampler_options(a)
    a.add_argument("--json", dest="json_out", help="write the full report (per item and totals) here")
    a.add_argument("--totals-only", action="store_true", help="print the totals only, not one line per item")

    b = sub.add_parser("build", help="build 4-option classification MCQs from a labelled source")
    b.add_argument("labels", help="FSD50K-style CSV (fname,labels[,split]), JSON or JSONL of clip -> labels")
    b.add_argument("--sampler", default="ontology", help="registered negative_sampler (ontology, random)")
    _sampler_options(b)
    b.add_argument("--eval-out", help="write an AF-Reasoning-Eval JSON file here")
    b.add_argument("--manifest-out", help="write a JSONL manifest (for the 'manifest' source) here")
    b.add_argument("--split", help="keep only CSV rows whose 'split' column has this value")
    b.add_argument("--options", type=int, default=4)
    b.add_argument("--ambiguous", choices=("random", "skip"), default="random",
                   help="a clip with several most specific labels: pick one at random, or skip it")
    b.add_argument("--style", choices=("eval", "as-is"), default="eval",
                   help="'eval' writes labels like AF-Reasoning-Eval (lower case, '_' as spaces)")
    b.add_argument("--audio-ext", default=".wav", help="appended to clip names without an extension")
    b.add_argument("--audio-prefix", default="", help="prepended to the manifest's audio paths")
    b.add_argument("--dataset-path", default="FSD50k/eval")
    b.add_argument("--task", default="AF-Reasoning-Eval-Classification",
                   help="flamingo_task of the eval file")

    s = sub.add_parser("sample", help="print negatives for one label")
    s.add_argument("label")
    s.add_argument("-k", type=int, default=3)
    s.add_argument("--sampler", default="ontology")
    s.add_argument("--exclude", action="append", default=[], help="a positive label of the clip (repeatable)")
    _sampler_options(s)


def build_sampler(name: str, args: argparse.Namespace) -> Any:
    """A registered sampler built from the command-line options it accepts."""
    from afcot_core.api import default_plugins

    reg = default_plugins().registry("negative_sampler").get(name, "--sampler")
    wanted = {"ontology": args.ontology, "vocabulary": args.vocabulary, "seed": args.seed,
              "fallback": args.fallback, "close": args.close}
    fields = set(reg.config.__struct_fields__)
    config = msgspec.convert({k: v for k, v in wanted.items() if k in fields and v is not None}, reg.config)
    return reg.build(config)


def run(args: argparse.Namespace) -> int:
    return {"analyze": run_analyze, "build": run_build, "sample": run_sample}[args.negatives_action](args)


def run_analyze(args: argparse.Namespace) -> int:
    from afcot_negatives.analysis import analyze
    from afcot_negatives.evalfile import read_eval_file
    from afcot_negatives.samplers import OntologyConfig, OntologySampler
    from afcot_negatives.vocabulary import load_ontology

    _, entries = read_eval_file(args.file)
    vocabulary: str | list[str] | None = args.vocabulary
    if vocabulary is None:  # the labels the file uses (those the ontology knows)
        onto = load_ontology(args.ontology)
        vocabulary = sorted({c for e in entries for c in e.choices if onto.resolve(c) is not None})
    sampler = OntologySampler(OntologyConfig(ontology=args.ontology, vocabulary=vocabulary, seed=args.seed,
                                             fallback=args.fallback, close=args.close))
    report = analyze(entries, sampler, args.seed)
    if not args.totals_only:
        for r in report.items:
            rels = "\t".join(f"{d}={rel}" for d, rel in r.relations.items())
            print(f"{r.key}\t{r.name}\t{r.answer}\t{rels}")
    print(json.dumps(report.totals, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report.to_json(), indent=1, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    return 0


def run_build(args: argparse.Namespace) -> int:
    from afcot_negatives.builder import build_mcq, read_labelled, write_manifest
    from afcot_negatives.evalfile import write_eval_file
    from afcot_negatives.vocabulary import load_ontology

    if not args.eval_out and not args.manifest_out:
        raise BadInput("give --eval-out and/or --manifest-out")
    sampler = build_sampler(args.sampler, args)
    ontology = getattr(sampler, "ontology", None) or load_ontology(args.ontology)
    clips = read_labelled(args.labels, args.split)
    result = build_mcq(clips, sampler, ontology, options=args.options, seed=args.seed,
                       ambiguous=args.ambiguous, style=args.style, audio_ext=args.audio_ext)
    if args.eval_out:
        write_eval_file(args.eval_out, result.entries, args.dataset_path, args.task)
    if args.manifest_out:
        write_manifest(args.manifest_out, result, args.audio_prefix)
    letters = [0] * args.options
    for e in result.entries:
        letters[e.answer_index] += 1
    print(json.dumps({"clips": len(clips), "items": len(result.entries), "skipped": dict(result.skipped),
                      "answer_letters": dict(zip("ABCDEFG", letters, strict=False))}, indent=2))
    return 0


def run_sample(args: argparse.Namespace) -> int:
    sampler = build_sampler(args.sampler, args)
    negatives = sampler.sample(args.label, args.k, exclude=args.exclude, seed=args.seed)
    print(json.dumps(negatives, ensure_ascii=False))
    return 0
