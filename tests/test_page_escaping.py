"""Every value a run shows on a page comes from a record, a teacher or a benchmark file, and is untrusted: the report
page (``afcot report``) and the audit page (``afcot audit``) show it as text. A whole run carries the payloads: a
manifest whose ids, questions and options hold them (the embedded LLM repeats the question in its SUMMARY replies,
so they come back from a teacher too), and an MMAR file whose questions, options and sub-category hold them."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from afcot_embedded.source import make_item

from afcot_core import cli, recipe, runner
from afcot_core.records import Record
from afcot_core.shards import iter_samples

from .htmltree import injected, parse, remote_references

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "<script>alert(1)</script>"
QUOTES = '" onmouseover="x'
CLOSERS = "</textarea></script><img src=x onerror=alert(2)>"
PAYLOADS = (SCRIPT, QUOTES, CLOSERS)

#: what the report page writes itself (anything else in its DOM was injected)
REPORT_TAGS = {"#document", "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "h4", "h5", "h6", "p",
               "code", "details", "summary", "pre", "table", "thead", "tbody", "tr", "th", "td", "section", "span",
               "audio", "dl", "dt", "dd", "div", "ol", "li", "b", "svg", "line", "text", "polyline", "circle",
               "figure", "img", "figcaption"}
REPORT_ATTRS = {"lang", "charset", "id", "class", "data-id", "data-name", "controls", "preload", "src", "open", "alt",
                "width", "height", "viewbox", "role", "aria-label", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r",
                "fill", "stroke", "stroke-width", "points", "text-anchor", "font-size"}
AUDIT_TAGS = {"#document", "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "code", "div", "button",
              "label", "input", "span", "section", "audio", "dl", "dt", "dd", "fieldset", "legend", "script"}
AUDIT_ATTRS = {"lang", "charset", "id", "type", "accept", "class", "role", "data-index", "data-id", "controls",
               "preload", "src", "name", "value"}


def _manifest(folder: Path, count: int = 24) -> Path:
    """Embedded items as a manifest: each question ends with a payload, each option too, every third id holds one."""
    lines = []
    for i in range(count):
        item = make_item(i, 7, 0.0)
        audio = folder / f"clip{i}.flac"
        audio.write_bytes(item.audio.data)
        payload = PAYLOADS[i % 3]
        choices = [f"{c} {payload}" for c in item.choices] if item.choices else None
        answer = f"{item.answer} {payload}" if item.choices else item.answer
        ident = f"{item.id}{PAYLOADS[i // 3 % 3]}" if i % 3 == 1 else item.id
        lines.append(json.dumps({"id": ident, "audio": audio.name, "question": f"{item.question[:-1]} {payload}?",
                                 "answer": answer, "choices": choices}))
    path = folder / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _mmar(folder: Path, count: int = 3) -> Path:
    rows = []
    for i in range(count):
        rows.append({"id": f"m{i}{PAYLOADS[i]}", "audio_path": f"clip{i}.flac",
                     "question": f"Which sound? {PAYLOADS[i]}",
                     "choices": [f"a bell {PAYLOADS[i]}", "a dog"], "answer": f"a bell {PAYLOADS[i]}",
                     "modality": "sound", "category": "Signal Layer", "sub-category": f"sub {PAYLOADS[i]}"})
    path = folder / "mmar.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def payload_run(plugins, tmp_path_factory):
    data = tmp_path_factory.mktemp("payloads")
    manifest = _manifest(data)
    _mmar(data)
    out = data / "run"
    parsed = recipe.load("quickstart", plugins, [
        f"generate.source={{use='manifest', path='{manifest}'}}", "generate.shard_size=12",
        "evaluate.model={use='embedded-alm'}",
        f"evaluate.benchmarks=[{{use='mmar', data_dir='{data}', file='mmar.jsonl'}}]"])
    runner.run(parsed, plugins, out, ["generate", "evaluate"], show_progress=False)
    return out


def _accepted(run: Path) -> list[Record]:
    return [msgspec.json.decode(p["json"], type=Record) for s in sorted(run.glob("generate/shard-*.tar"))
            for _, p in iter_samples(s)]


def test_the_payload_run_carries_payloads_in_records_teacher_replies_and_benchmark_reports(payload_run):
    accepted = _accepted(payload_run)
    assert accepted, "no accepted record: the payloads must reach the CoT"
    summaries = " ".join(r.cot.summary for r in accepted)
    conclusions = " ".join(r.cot.conclusion for r in accepted)
    assert all(p in summaries for p in PAYLOADS)  # from the LLM's replies
    assert any(p in conclusions for p in PAYLOADS)
    assert all(any(p in r.item.id for r in accepted) for p in PAYLOADS)
    report = (payload_run / "evaluate" / "mmar" / "report.md").read_text(encoding="utf-8")
    assert all(f"sub {p}" in report for p in PAYLOADS)


def _shows_literally(dom, texts) -> list[str]:
    shown = dom.text()
    return [t for t in texts if " ".join(t.split()) not in shown]


def test_the_report_page_shows_every_payload_as_text(payload_run):
    assert cli.main(["report", str(payload_run), "--samples", "30"]) == 0
    html = (payload_run / "report.html").read_text(encoding="utf-8")
    dom = parse(html)
    assert injected(dom, REPORT_TAGS, REPORT_ATTRS) == []
    assert remote_references(html) == []
    assert not dom.find_all("script") and not dom.find_all("textarea")
    assert all(img.attrs["src"].startswith("data:image/png;base64,") for img in dom.find_all("img"))
    accepted = _accepted(payload_run)
    ids = {s.attrs["data-id"] for s in dom.find_all("section", class_="sample")}
    assert {r.item.id for r in accepted} <= ids  # attribute values read back whole
    assert _shows_literally(dom, [*PAYLOADS, *(r.cot.summary for r in accepted), *(f"sub {p}" for p in PAYLOADS)]) \
        == []
    benchmark = dom.find_all("section", class_="benchmark")[0]
    assert all(f"sub {p}" in benchmark.text() for p in PAYLOADS)


def test_the_audit_page_shows_every_payload_as_text_and_keeps_its_ids_whole(payload_run, tmp_path):
    page = tmp_path / "audit.html"
    assert cli.main(["audit", str(payload_run), "--sample", "50", "--out", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    dom = parse(html)
    assert injected(dom, AUDIT_TAGS, AUDIT_ATTRS) == []
    assert remote_references(html) == []
    scripts = dom.find_all("script")
    assert [s.attrs.get("type") for s in scripts] == ["application/json", None]
    meta = json.loads(scripts[0].text())
    accepted = {r.item.id: r for r in _accepted(payload_run)}
    assert sorted(meta["ids"]) == sorted(accepted) and all(any(p in i for i in meta["ids"]) for p in PAYLOADS)
    assert [s.attrs["data-id"] for s in dom.find_all("section", class_="audit-sample")] == meta["ids"]
    assert _shows_literally(dom, [*PAYLOADS, *(r.cot.reasoning for r in accepted.values()),
                                  *(r.item.question for r in accepted.values())]) == []


needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                                    reason="chromium is not installed (apt-get install -y chromium)")


@needs_chromium
def test_chromium_builds_no_injected_element_from_the_report_page(payload_run, tmp_path):
    assert cli.main(["report", str(payload_run), "--samples", "30"]) == 0
    args = [a for p in PAYLOADS for a in ("--literal", p)]
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "browser_check.py"), str(payload_run / "report.html"),
                           "--screenshot", str(tmp_path / "report.png"), "--no-plot", *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_chromium
def test_chromium_builds_no_injected_element_from_the_audit_page_and_round_trips_its_labels(payload_run, tmp_path):
    page = tmp_path / "audit.html"
    assert cli.main(["audit", str(payload_run), "--sample", "8", "--seed", "1", "--out", str(page)]) == 0
    args = [a for p in PAYLOADS for a in ("--literal", p)]
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "audit_browser_check.py"), str(page),
                           "--labels-out", str(tmp_path / "labels.json"), *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    saved = json.loads((tmp_path / "labels.json").read_text(encoding="utf-8"))
    assert any(p in i for i in saved["labels"] for p in PAYLOADS)  # the ids survive the page whole
    assert cli.main(["audit", "score", str(tmp_path / "labels.json"), "--run", str(payload_run)]) == 0
