"""The causality audit (``afcot audit``): a page to label whether each sampled CoT's CONCLUSION follows from its
REASONING, and the score of those labels (the false-causality rate, and how well the automatic check agrees).

The paper audited its data by hand; this is that audit made repeatable. ``afcot audit RUN --sample 50`` draws a
seeded random sample of the run's accepted CoT records and writes one self-contained HTML page (audio inline as
``data:`` URLs, nothing fetched); the annotator picks "follows" or "does not follow" per sample and saves the labels
as JSON from the page (a saved file loads back into it). ``afcot audit score LABELS.json`` reads them back.

The automatic check is the paper plugin's causality check (``causality = true`` on a strategy): it notes
``causality/checked`` in a record's codes, and ``causality/does-not-follow`` when it found that the REASONING alone
does not lead to the CONCLUSION but kept the record (``causality_rejects = false``; by default it rejects it, and
then every accepted record passed it). For the agreement the positive class is "does not follow": precision is the
share of the records the check flags that the annotator also labelled "does not follow", recall the share of the
records labelled "does not follow" that the check flags.
"""

from __future__ import annotations

import base64
import json
import math
import random
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import msgspec

from afcot_core.api import BadInput, Record, iter_samples

FORMAT = "afcot-audit-labels/1"
LABELS = ("follows", "does-not-follow")
#: the two-sided 95 % normal quantile
Z95 = 1.959963984540054
CHECKED, FLAGGED = "causality/checked", "causality/does-not-follow"


@dataclass
class Entry:
    """One sampled record and its audio (encoded bytes) when its shard holds it."""

    record: Record
    audio: bytes | None = None
    audio_type: str = "audio/flac"


def _lock(root: Path) -> dict[str, Any]:
    import tomllib

    if not root.is_dir():
        raise BadInput(f"{root}: no such run directory")
    lock = root / "recipe.lock.toml"
    if not lock.is_file():
        raise BadInput(f"{root}: not a run directory (no recipe.lock.toml)")
    try:
        return tomllib.loads(lock.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{lock}: not valid TOML: {exc}") from None


def _accepted(root: Path, wanted: set[str] | None = None) -> dict[str, Entry]:
    """The run's accepted records with a CoT by item id (shard order); with ``wanted``, only those, with audio."""
    found: dict[str, Entry] = {}
    for shard in sorted((root / "generate").glob("shard-*.tar")):
        for key, parts in iter_samples(shard):
            if "json" not in parts:
                continue
            try:
                record = msgspec.json.decode(parts["json"], type=Record)
            except msgspec.DecodeError as exc:
                raise BadInput(f"{shard}: sample {key}: not a record: {exc}") from None
            if record.verdict != "accepted" or record.cot is None:
                continue
            if wanted is None:
                found[record.item.id] = Entry(record)
            elif record.item.id in wanted:
                ext = next((e for e in ("flac", "wav", "mp3") if e in parts), None)
                found[record.item.id] = Entry(record, parts.get(ext) if ext else None, f"audio/{ext or 'flac'}")
    return found


def draw(ids: list[str], count: int, seed: int) -> list[str]:
    """``count`` of ``ids`` (all of them when fewer), drawn at random under ``seed``: the same run, count and seed
    always give the same sample, in the same order."""
    return random.Random(seed).sample(ids, min(count, len(ids)))


def sample(root: Path, count: int, seed: int) -> tuple[dict[str, Any], list[Entry]]:
    """The run's lock and a seeded sample of ``count`` of its accepted CoT records (with their audio)."""
    if count < 1:
        raise BadInput(f"--sample {count}: must be >= 1")
    doc = _lock(root)
    ids = list(_accepted(root))
    if not ids:
        raise BadInput(f"{root}: no accepted CoT records to audit (run the generate stage first)")
    chosen = draw(ids, count, seed)
    entries = _accepted(root, set(chosen))
    return doc, [entries[i] for i in chosen]


STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:62rem;padding:0 1rem;color:#1d2330}
.audit-sample{border:1px solid #d6dbe4;border-radius:6px;padding:.6rem 1rem;margin:1rem 0}
.audit-sample.labelled{border-left:5px solid #2b5fad}dt{font-weight:600}dd{margin:0 0 .5rem 0;white-space:pre-wrap}
.muted{color:#5b6577}fieldset{border:1px solid #d6dbe4;border-radius:4px}label{margin-right:1.2rem}
#controls{position:sticky;top:0;background:#fff;padding:.5rem 0;border-bottom:1px solid #d6dbe4}
#status{margin-left:1rem}
"""

SCRIPT = """
(function () {
  "use strict";
  var meta = JSON.parse(document.getElementById("audit-meta").textContent);
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.audit-sample"));
  var status = document.getElementById("status");
  function say(text) { status.textContent = text; }
  function labels() {
    var out = {};
    sections.forEach(function (s) {
      var checked = s.querySelector("input[type=radio]:checked");
      if (checked) { out[meta.ids[Number(s.dataset.index)]] = checked.value; }
    });
    return out;
  }
  function progress() {
    var n = 0;
    sections.forEach(function (s) {
      var done = !!s.querySelector("input[type=radio]:checked");
      s.classList.toggle("labelled", done);
      n += done ? 1 : 0;
    });
    document.getElementById("progress").textContent = n + " of " + sections.length + " labelled";
  }
  function serialise() {
    return JSON.stringify({format: meta.format, run: meta.run, name: meta.name, fingerprint: meta.fingerprint,
                           seed: meta.seed, sample: meta.ids, labels: labels()}, null, 2);
  }
  function apply(doc) {
    if (!doc || typeof doc !== "object" || doc.format !== meta.format || typeof doc.labels !== "object") {
      throw new Error("not an afcot audit labels file");
    }
    var unknown = [], bad = [], applied = 0;
    Object.keys(doc.labels).forEach(function (id) {
      var index = meta.ids.indexOf(id), value = doc.labels[id];
      if (index < 0) { unknown.push(id); return; }
      if (meta.labels.indexOf(value) < 0) { bad.push(id); return; }
      sections[index].querySelectorAll("input[type=radio]").forEach(function (r) { r.checked = r.value === value; });
      applied += 1;
    });
    progress();
    var note = "loaded " + applied + " labels";
    if (doc.fingerprint !== meta.fingerprint) { note += "; the file was saved for another run"; }
    if (unknown.length) { note += "; " + unknown.length + " not in this sample: " + unknown.slice(0, 3).join(", "); }
    if (bad.length) { note += "; " + bad.length + " with an unknown label"; }
    say(note);
  }
  window.afcotAudit = {labels: labels, serialise: serialise, apply: apply};
  sections.forEach(function (s) { s.addEventListener("change", progress); });
  document.getElementById("save").addEventListener("click", function () {
    var url = URL.createObjectURL(new Blob([serialise()], {type: "application/json"}));
    var a = document.createElement("a");
    a.href = url;
    a.download = meta.file;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
    say("saved " + Object.keys(labels()).length + " labels to " + meta.file);
  });
  document.getElementById("load").addEventListener("change", function (event) {
    var file = event.target.files[0];
    if (!file) { return; }
    file.text().then(function (text) { apply(JSON.parse(text)); })
      .catch(function (err) { say("could not load " + file.name + ": " + err.message); });
  });
  progress();
})();
"""


def _json_in_script(value: Any) -> str:
    """JSON that cannot end the ``<script>`` element it sits in (``<``, ``>`` and ``&`` as escapes)."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _entry(index: int, entry: Entry) -> str:
    record, item = entry.record, entry.record.item
    assert record.cot is not None
    parts = [f'<section class="audit-sample" id="sample-{index}" data-index="{index}" data-id="{escape(item.id)}">',
             f"<h2>{index + 1}. <code>{escape(item.id)}</code></h2>"]
    if entry.audio:
        data = base64.b64encode(entry.audio).decode()
        parts.append(f'<audio controls preload="metadata" src="data:{entry.audio_type};base64,{data}"></audio>')
    else:
        parts.append(f"<p class=muted>audio: {escape(item.audio.path or 'not stored')} (not embedded)</p>")
    fields = [("question", item.question), ("choices", " · ".join(item.choices or []) or "—"),
              ("REASONING", record.cot.reasoning), ("CONCLUSION", record.cot.conclusion), ("answer", item.answer)]
    parts.append("<dl>" + "".join(f'<dt>{k}</dt><dd class="{k.lower()}">{escape(v)}</dd>' for k, v in fields)
                 + "</dl>")
    name = f"label-{index}"
    parts.append(f'<fieldset class="choice"><legend>Does the CONCLUSION follow from the REASONING?</legend>'
                 f'<label><input type="radio" name="{name}" value="follows"> follows</label>'
                 f'<label><input type="radio" name="{name}" value="does-not-follow"> does not follow</label>'
                 "</fieldset></section>")
    return "\n".join(parts)


def render(root: Path, doc: dict[str, Any], entries: list[Entry], seed: int) -> str:
    """The annotation page of ``entries`` from run ``root``."""
    name = str(doc.get("recipe", {}).get("run", {}).get("name", root.name))
    meta = {"format": FORMAT, "run": str(root.resolve()), "name": name, "fingerprint": str(doc.get("fingerprint", "")),
            "seed": seed, "ids": [e.record.item.id for e in entries], "labels": list(LABELS),
            "file": f"audit-labels-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.json"}
    body = [f"<h1>Causality audit: run {escape(name)}</h1>",
            f"<p class=muted>{escape(str(root))} · fingerprint <code>{escape(meta['fingerprint'])}</code> · "
            f"{len(entries)} accepted records drawn with seed {seed}</p>",
            "<p>For each sample, read the question and the REASONING, then decide: does the CONCLUSION follow from "
            "the REASONING alone? Save the labels when done (or midway: a saved file loads back), then run "
            "<code>afcot audit score FILE</code>.</p>",
            '<div id="controls"><button type="button" id="save">save labels</button> '
            '<label>load labels <input type="file" id="load" accept="application/json,.json"></label>'
            '<span id="progress"></span><span id="status" class="muted" role="status"></span></div>']
    body += [_entry(i, e) for i, e in enumerate(entries)]
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>afcot audit {escape(name)}</title><style>{STYLE}</style></head>\n<body>\n" + "\n".join(body)
            + f'\n<script type="application/json" id="audit-meta">{_json_in_script(meta)}</script>'
            + f"\n<script>{SCRIPT}</script>\n</body></html>\n")


def write(root: Path, out: Path | None = None, count: int = 50, seed: int = 0) -> Path:
    """Write the audit page of ``count`` records of run ``root`` to ``out`` (default ``root/audit.html``)."""
    _lock(root)
    target = out or root / "audit.html"
    if target.is_dir():
        raise BadInput(f"{target}: is a folder; give the HTML file to write")
    if not target.parent.is_dir():
        raise BadInput(f"{target}: its folder {target.parent} does not exist")
    doc, entries = sample(root, count, seed)
    target.write_text(render(root, doc, entries, seed), encoding="utf-8")
    return target


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``k / n`` (95 % by default); (0, 1) when ``n`` is 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def read_labels(path: Path) -> dict[str, Any]:
    """A labels file saved from the page; :class:`BadInput` naming the file (and the record) when it is wrong."""
    if not path.is_file():
        raise BadInput(f"{path}: no such labels file")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("labels"), dict):
        raise BadInput(f"{path}: not an afcot audit labels file (format {FORMAT!r} with a 'labels' object)")
    sample_ids = doc.get("sample", [])
    if not isinstance(sample_ids, list) or not all(isinstance(i, str) for i in sample_ids):
        raise BadInput(f"{path}: 'sample' must be a list of item ids")
    for item_id, label in doc["labels"].items():
        if label not in LABELS:
            raise BadInput(f"{path}: record {item_id}: label {label!r} is not one of {', '.join(LABELS)}")
        if sample_ids and item_id not in sample_ids:
            raise BadInput(f"{path}: record {item_id}: not in the audited sample")
    return doc


@dataclass
class Score:
    labelled: int
    unlabelled: int
    false_causality: int
    rate: float | None
    interval: tuple[float, float]
    #: the check's confusion against the labels (positive: "does not follow"); None when no record carries it
    checked: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    precision: float | None = None
    recall: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"labelled": self.labelled, "unlabelled": self.unlabelled, "false_causality": self.false_causality,
                "rate": self.rate, "interval_95": list(self.interval), "check": None if not self.checked else {
                    "checked": self.checked, "positive": "does-not-follow", "tp": self.tp, "fp": self.fp,
                    "fn": self.fn, "tn": self.tn, "precision": self.precision, "recall": self.recall}}


def score(labels: dict[str, str], sample_size: int, records: dict[str, Record] | None = None) -> Score:
    """The false-causality rate of ``labels`` (id → label) with its 95 % Wilson interval, and with ``records`` (id →
    record) the agreement of the causality check recorded in them."""
    n = len(labels)
    k = sum(v == "does-not-follow" for v in labels.values())
    result = Score(n, max(0, sample_size - n), k, k / n if n else None, wilson(k, n))
    for item_id, label in labels.items():
        record = (records or {}).get(item_id)
        if record is None or CHECKED not in record.codes:
            continue
        result.checked += 1
        flagged, truth = FLAGGED in record.codes, label == "does-not-follow"
        result.tp += flagged and truth
        result.fp += flagged and not truth
        result.fn += truth and not flagged
        result.tn += not truth and not flagged
    if result.checked:
        result.precision = result.tp / (result.tp + result.fp) if result.tp + result.fp else None
        result.recall = result.tp / (result.tp + result.fn) if result.tp + result.fn else None
    return result


def score_file(path: Path, run: Path | None = None) -> tuple[Score, dict[str, Any]]:
    """Score a labels file against run ``run`` (default: the run the file names, when it is there)."""
    doc = read_labels(path)
    labels: dict[str, str] = doc["labels"]
    root = run or (Path(doc["run"]) if isinstance(doc.get("run"), str) and Path(doc["run"]).is_dir() else None)
    records: dict[str, Record] | None = None
    if root is not None:
        _lock(root)
        records = {i: e.record for i, e in _accepted(root).items()}
        for item_id in labels:
            if item_id not in records:
                raise BadInput(f"{path}: record {item_id}: no accepted CoT record of that id in run {root}")
    return score(labels, len(doc.get("sample", [])) or len(labels), records), {"run": str(root) if root else None}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def report(result: Score, where: dict[str, Any]) -> str:
    lo, hi = result.interval
    lines = [f"labelled {result.labelled}" + (f" ({result.unlabelled} of the sample not labelled)"
                                              if result.unlabelled else ""),
             f"false causality (does not follow): {result.false_causality} of {result.labelled} = "
             f"{_pct(result.rate)}, 95 % Wilson interval {_pct(lo)} – {_pct(hi)}"]
    if result.checked:
        lines += [f"causality check on {result.checked} labelled records (positive: does not follow): "
                  f"tp {result.tp}, fp {result.fp}, fn {result.fn}, tn {result.tn}",
                  f"precision {_pct(result.precision)}, recall {_pct(result.recall)}"]
    elif where["run"]:
        lines.append(f"no labelled record of {where['run']} carries the causality check's verdict "
                     "(causality = true on the strategy)")
    else:
        lines.append("the run was not found: give --run RUN for the causality check's agreement")
    return "\n".join(lines)
