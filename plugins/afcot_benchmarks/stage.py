"""The evaluate stage: a registered teacher_alm answers each benchmark's items; the answers are scored.

Per benchmark, into ``<out>/<label>/``: ``predictions.jsonl`` (appended as items finish; a rerun
skips the ids already there), the official prediction file(s), ``report.json``, ``report.md``,
``plots/<breakdown>.png`` and ``run.json``. All items are launched as coroutines under a bounded
concurrency, so the model's micro-batcher coalesces them. With ``repair`` on, an output that opened
``<REASONING>`` but never closed ``</CONCLUSION>`` is regenerated once (Audio Flamingo 2's CoT rule).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from afcot_benchmarks.protocol import Benchmark, EvalItem
from afcot_benchmarks.scoring import score, write_reports
from afcot_core.api import BadInput, Component, Plugins, Teacher, component, convert, digest, repair_prefix, resolve

#: ``progress(name, total)`` gives a context-managed bar with ``record(verdict)``
Progress = Callable[[str, int | None], Any]


class EvaluateSettings(msgspec.Struct, forbid_unknown_fields=True):
    """``limit`` = 0 evaluates every item; otherwise the first ``limit``."""

    #: append the CoT suffix to every prompt
    cot: bool = True
    #: "benchmark": each benchmark's own prompt; "trained": the layout students are trained on (options inline)
    format: Literal["benchmark", "trained"] = "benchmark"
    #: with format = "trained": the options' layout (afcot_core.api.LAYOUTS), the student's
    #: ``train.prompt_layout``
    prompt_layout: Literal["inline", "model-card"] = "inline"
    #: regenerate once an output that opened <REASONING> but never closed </CONCLUSION> (AF2's rule)
    repair: bool = False
    #: items in flight at once (the model's micro-batcher groups them)
    concurrency: int = 64
    #: evaluate only the first N items (0: all)
    limit: int = 0
    #: write a PNG bar chart per breakdown
    plots: bool = True

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.limit < 0:
            raise ValueError("concurrency must be >= 1 and limit >= 0")
        if self.prompt_layout != "inline" and self.format != "trained":
            raise ValueError(f"prompt_layout = \"{self.prompt_layout}\" lays out the trained prompts; set "
                             "format = \"trained\" (the benchmarks' own prompts keep their layout)")


class Prediction(msgspec.Struct, omit_defaults=True):
    """One line of ``predictions.jsonl``; ``answer`` is informative (scores re-extract from ``output``)."""

    id: str
    output: str
    answer: str
    repaired: bool = False
    first_output: str | None = None
    latency_s: float = 0.0


@dataclass
class EvaluateSection:
    settings: EvaluateSettings
    model: Component
    benchmarks: dict[str, Component]

    def components(self) -> list[Component]:
        return [self.model, *self.benchmarks.values()]

    def to_table(self) -> dict[str, Any]:
        return {**msgspec.to_builtins(self.settings), "model": self.model.to_table(),
                "benchmarks": [{"label": label, **c.to_table()} for label, c in self.benchmarks.items()]}

    def run(self, ctx: Any) -> dict[str, Any]:
        return self.run_into(ctx.out_dir / "evaluate", ctx.log, ctx.progress)

    def run_into(self, base: Path, log: Any, progress: Progress) -> dict[str, Any]:
        """Evaluate every benchmark into ``base/<label>``; a summary per label."""
        return asyncio.run(self._run_all(base, log, progress))

    async def _run_all(self, base: Path, log: Any, progress: Progress) -> dict[str, Any]:
        model: Teacher = self.model.build()  # one event loop for all: the model's batcher lives in it
        results = {}
        checkpoint = model_digest(self.model.to_table())
        for label, comp in self.benchmarks.items():
            identity = {"model": self.model.to_table(), "checkpoint": checkpoint, "benchmark": comp.to_table(),
                        "cot": self.settings.cot, "format": self.settings.format, "repair": self.settings.repair}
            if self.settings.prompt_layout != "inline":  # inline runs keep the identity they always had
                identity["prompt_layout"] = self.settings.prompt_layout
            job = Evaluation(comp.build(), model, self.settings, base / label, identity,
                             log.bind(benchmark=label))
            results[label] = await job.run(progress)
        return results


class EvaluateStage:
    """Parses the recipe's ``[evaluate]`` table (see docs/benchmarks.md)."""

    settings = EvaluateSettings

    def parse(self, table: Any, plugins: Plugins) -> EvaluateSection:
        if not isinstance(table, dict):
            raise BadInput("[evaluate]: expected a table")
        for key in ("model", "benchmarks"):
            if key not in table:
                raise BadInput(f"[evaluate] missing key 'evaluate.{key}'")
        settings = convert({k: v for k, v in table.items() if k not in ("model", "benchmarks")},
                           EvaluateSettings, "evaluate", ("model", "benchmarks"))
        assert isinstance(settings, EvaluateSettings)
        entries = table["benchmarks"]
        if not isinstance(entries, list) or not entries:
            raise BadInput("[evaluate] evaluate.benchmarks: expected a non-empty array of tables")
        benchmarks: dict[str, Component] = {}
        for i, entry in enumerate(entries):
            where = f"evaluate.benchmarks[{i}]"
            if not isinstance(entry, dict):
                raise BadInput(f"[{where}]: expected a table with a 'use' key")
            rest = {k: v for k, v in entry.items() if k != "label"}
            comp = component(rest, "benchmark", where, plugins)
            label = entry.get("label", comp.registration.name)
            if not isinstance(label, str) or not label or "/" in label or label.startswith("."):
                raise BadInput(f"[{where}] {where}.label: expected a folder name, got {label!r}")
            if label in benchmarks:
                raise BadInput(f"[{where}] {where}.label: '{label}' is used twice; give each entry a label")
            benchmarks[label] = comp
        return EvaluateSection(settings, component(table["model"], "teacher_alm", "evaluate.model", plugins),
                               benchmarks)


def model_digest(table: dict[str, Any]) -> str:
    """The digest of the model folder a teacher table names (``model = "{run}/train/final"``), "" for none.

    A folder our trainer wrote carries it in ``checkpoint.json``; for any other folder it is the digest of
    its files' names, sizes and modification times. Evaluations are keyed by it: a new checkpoint is never
    scored with the predictions of an old one.
    """
    name = table.get("model")
    folder = resolve(name) if isinstance(name, str) else None
    if folder is None:
        return ""
    marker = folder / "checkpoint.json"
    if marker.is_file():
        return str(json.loads(marker.read_text(encoding="utf-8")).get("digest", ""))
    return digest(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))


class Evaluation:
    """One benchmark run with one model into ``out``: infer what is missing, then score and report."""

    def __init__(self, benchmark: Benchmark, model: Teacher, settings: EvaluateSettings, out: Path,
                 identity: dict[str, Any], log: Any) -> None:
        self.benchmark, self.model, self.settings, self.out, self.log = benchmark, model, settings, out, log
        self.fingerprint = digest(identity)
        self.identity = identity
        self.predictions_path = out / "predictions.jsonl"

    async def run(self, progress: Progress) -> dict[str, Any]:
        loaded = self.benchmark.load()
        items = loaded.items[: self.settings.limit] if self.settings.limit else loaded.items
        if not items:
            raise BadInput(f"{self.benchmark.name}: the benchmark has no items")
        self._claim()
        done = self._resume()
        missing_audio = [it.id for it in items if it.audio is None]
        if missing_audio:
            self.log.warning("audio files missing; those items count as wrong", count=len(missing_audio),
                             first=next(it.audio_path for it in items if it.audio is None))
        todo = [it for it in items if it.id not in done and it.audio is not None]
        with progress(self.benchmark.name, len(items)) as bar:
            for it in items:
                if it.id in done:
                    bar.record(self._verdict(it, done[it.id].output), resumed=True)
                elif it.audio is None:
                    bar.record("failed")
            failures = await self._infer(todo, done, bar)
        return self._report(items, done, missing_audio, failures)

    def _claim(self) -> None:
        """Refuse a folder holding predictions of another model, benchmark or prompt setting; when only the
        checkpoint changed (the model was trained again), move the old results to ``previous/<digest>/``."""
        meta = self.out / "run.json"
        if self.predictions_path.exists() and meta.exists():
            before = json.loads(meta.read_text(encoding="utf-8"))
            if before.get("fingerprint") != self.fingerprint:
                same_setup = all(before.get(k) == v for k, v in self.identity.items() if k != "checkpoint")
                if not same_setup:
                    raise BadInput(f"{self.out}: holds predictions of a different model, benchmark or setting; "
                                   "choose another output folder or delete this one")
                old = self._previous(before.get("checkpoint"))
                _move_results(self.out, old)
                self.log.info("new checkpoint; earlier results moved", to=str(old))
                back = self._previous(self.identity.get("checkpoint"))
                if back.is_dir():  # this checkpoint was evaluated here before: resume from its results
                    _move_results(back, self.out)
                    back.rmdir()
                    self.log.info("checkpoint evaluated before; its results resumed", source=str(back))
        self.out.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"fingerprint": self.fingerprint, **self.identity}, indent=2, default=str),
                        encoding="utf-8")

    def _previous(self, checkpoint: Any) -> Path:
        """Where the results of ``checkpoint`` are kept while another checkpoint of the model is evaluated."""
        return self.out / "previous" / (str(checkpoint or "unknown")[:12] or "unknown")

    def _resume(self) -> dict[str, Prediction]:
        """Predictions already on disk; a torn last line (an interrupted write) is dropped."""
        if not self.predictions_path.exists():
            return {}
        done: dict[str, Prediction] = {}
        lines = self.predictions_path.read_bytes().splitlines()
        good = []
        for line in lines:
            try:
                p = msgspec.json.decode(line, type=Prediction)
            except msgspec.DecodeError:
                continue
            done[p.id] = p
            good.append(line)
        if len(good) != len(lines) or (lines and not self.predictions_path.read_bytes().endswith(b"\n")):
            self.predictions_path.write_bytes(b"".join(g + b"\n" for g in good))
        if done:
            self.log.info("resuming", already_done=len(done))
        return done

    async def _infer(self, items: list[EvalItem], done: dict[str, Prediction], bar: Any) -> dict[str, str]:
        slots = asyncio.Semaphore(self.settings.concurrency)
        failures: dict[str, str] = {}
        with self.predictions_path.open("ab") as sink:

            async def one(item: EvalItem) -> None:
                async with slots:
                    try:
                        prediction = await self._predict(item)
                    except Exception as exc:  # one failing item must not end the run
                        failures[item.id] = f"{type(exc).__name__}: {exc}"
                        bar.record("failed")
                        return
                sink.write(msgspec.json.encode(prediction) + b"\n")
                sink.flush()
                done[item.id] = prediction
                bar.record(self._verdict(item, prediction.output))

            await asyncio.gather(*(one(item) for item in items))
        if failures:
            self.log.warning("model calls failed; those items count as wrong and are retried on rerun",
                             count=len(failures), first=next(iter(failures.values())))
        return failures

    def _prompt(self, item: EvalItem) -> str:
        if self.settings.format == "trained":
            return self.benchmark.trained_prompt(item, self.settings.cot, self.settings.prompt_layout)
        return self.benchmark.prompt(item, self.settings.cot)

    def _extract(self, item: EvalItem, output: str) -> str:
        if self.settings.format == "trained":
            return self.benchmark.trained_extract(item, output)
        return self.benchmark.extract(item, output)

    async def _predict(self, item: EvalItem) -> Prediction:
        prompt = self._prompt(item)
        reply = await self.model.ask(prompt, item.audio)
        output, latency, first = reply.text, reply.latency_s, None
        if self.settings.repair and (prefix := repair_prefix(output)) is not None:
            first = output
            again = await self.model.ask(prompt, item.audio, prefix=prefix)
            output, latency = prefix + again.text, latency + again.latency_s
        return Prediction(id=item.id, output=output, answer=self._extract(item, output),
                          repaired=first is not None, first_output=first, latency_s=round(latency, 4))

    def _record(self, summary: dict[str, Any], missing_audio: list[str], failures: dict[str, str]) -> None:
        """Add the run's counts, the ids without audio and the failed calls to ``run.json``."""
        meta = self.out / "run.json"
        doc = json.loads(meta.read_text(encoding="utf-8"))
        doc.update(summary=summary, missing_audio=missing_audio, failures=failures)
        meta.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")

    def _verdict(self, item: EvalItem, output: str) -> str:
        if not item.answer:  # withheld (MMAU test): nothing to judge
            return "accepted"
        return "accepted" if self.benchmark.judge(item, self._extract(item, output)).correct else "rejected"

    def _report(self, items: list[EvalItem], done: dict[str, Prediction], missing_audio: list[str],
                failures: dict[str, str]) -> dict[str, Any]:
        outputs = [(it, p.output if (p := done.get(it.id)) else None) for it in items]
        bench = self.benchmark
        answers = [(it, None if out is None else self._extract(it, out)) for it, out in outputs]
        exported = outputs if bench.extract_on_score else answers  # official files: raw outputs or final answers
        for name, text in bench.export(exported).items():
            (self.out / name).write_text(text, encoding="utf-8")
        repaired = sum(1 for it in items if (p := done.get(it.id)) and p.repaired)
        summary: dict[str, Any] = {"dir": str(self.out), "items": len(items), "failed": len(failures),
                                   "missing_audio": len(missing_audio), "repaired": repaired}
        self._record(summary, missing_audio, failures)
        if not any(it.answer for it in items):
            self.log.warning("answers are withheld; wrote the official submission file only")
            return {**summary, "scored": False}
        trained = self.settings.format == "trained" and not bench.extract_on_score
        report = score(bench, answers, extract=False) if trained else score(bench, outputs, extract=True)
        title = f"{self.benchmark.name}: {self.identity['model'].get('use', 'model')}"
        try:
            written = write_reports(report, self.out, title, plots=self.settings.plots)
        except ImportError:
            self.log.warning("matplotlib is not installed (pip install 'afcot[plot]'); no plots written")
            written = write_reports(report, self.out, title, plots=False)
        self.log.info("scored", accuracy=round(report.overall.accuracy, 4), correct=report.overall.correct,
                      total=report.overall.total, missing=report.overall.missing)
        return {**summary, "scored": True, **report.overall.to_dict(),
                "plots": [str(p) for p in written["plots"]]}


def _move_results(source: Path, target: Path) -> None:
    """Move the result files of ``source`` (all but ``previous/``) into ``target``, replacing what is there."""
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.name == "previous":
            continue
        there = target / path.name
        if there.is_dir():
            shutil.rmtree(there)
        path.replace(there)
