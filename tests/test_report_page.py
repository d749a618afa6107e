"""The report page's parts as a reader sees them: the training loss curve (``loss_svg``) read back from its SVG text,
and what the page shows of a run folder."""

from __future__ import annotations

import base64
import io
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import pytest
import soundfile as sf
from afcot_report.collect import collect
from afcot_report.page import _markdown, loss_svg, render, write

from afcot_core import cli
from afcot_core.api import BadInput
from afcot_core.records import AudioRef, CoT, Item, Record, TeacherCall

from .htmltree import Element, parse, rows

#: steps that do not start at 0, losses whose lowest is not 0 and whose range is not 1
LOSSES = [(10, 2.5), (20, 4.5), (30, 1.5), (40, 0.5)]


@dataclass
class Chart:
    """The parts of a loss chart: its box, the drawn line, its dots, its two axes and its labels."""

    svg: Element
    width: float
    height: float
    line: list[tuple[float, float]]
    dots: list[tuple[float, float]]
    x_axis: dict[str, float]
    y_axis: dict[str, float]
    texts: list[Element]

    def labels(self) -> list[tuple[str, float, float]]:
        """The loss labels (text, x, baseline y), from the bottom of the chart up."""
        found = []
        for t in self.texts:
            try:
                float(t.text())
            except ValueError:
                continue
            found.append((t.text(), float(t.attrs["x"]), float(t.attrs["y"])))
        return sorted(found, key=lambda label: -label[2])

    def text(self, content: str) -> Element:
        (found,) = [t for t in self.texts if t.text() == content]
        return found


def chart(losses, **size) -> Chart:
    (svg,) = parse(loss_svg(losses, **size)).find_all("svg")
    x0, y0, width, height = (float(v) for v in svg.attrs["viewbox"].split())
    assert (x0, y0) == (0, 0)
    (polyline,) = svg.find_all("polyline")
    line = [(float(x), float(y)) for x, y in (p.split(",") for p in polyline.attrs["points"].split())]
    dots = [(float(c.attrs["cx"]), float(c.attrs["cy"])) for c in svg.find_all("circle")]
    axes = [{k: float(line.attrs[k]) for k in ("x1", "y1", "x2", "y2")} for line in svg.find_all("line")]
    (y_axis,) = [a for a in axes if a["x1"] == a["x2"]]
    (x_axis,) = [a for a in axes if a["x1"] != a["x2"]]
    return Chart(svg, width, height, line, dots, x_axis, y_axis, svg.find_all("text"))


def inside(c: Chart, x: float, y: float) -> bool:
    return 0 <= x <= c.width and 0 <= y <= c.height


def test_the_loss_curve_runs_from_the_first_step_at_the_left_to_the_last_at_the_right():
    c = chart(LOSSES)
    assert len(c.line) == len(LOSSES) and all(inside(c, x, y) for x, y in c.line)
    xs = [x for x, _ in c.line]
    assert xs[0] == c.y_axis["x1"] == c.x_axis["x1"]  # the first step on the loss axis
    assert xs[-1] == c.x_axis["x2"]  # the last step at the right end of the step axis
    for (step, _), x in zip(LOSSES, xs, strict=True):  # steps evenly spread: step 20 a third of the way
        assert x == pytest.approx(xs[0] + (step - 10) / 30 * (xs[-1] - xs[0]), abs=0.11)


def test_the_highest_loss_is_at_the_top_of_the_loss_axis_and_the_lowest_on_the_step_axis():
    c = chart(LOSSES)
    ys = [y for _, y in c.line]
    top, bottom = c.y_axis["y1"], c.y_axis["y2"]
    assert top < bottom and c.x_axis["y1"] == c.x_axis["y2"] == bottom  # the axes meet at the bottom left
    assert ys[1] == top and ys[3] == bottom  # 4.5 the highest, 0.5 the lowest
    for (_, loss), y in zip(LOSSES, ys, strict=True):  # a loss's height is in proportion: 2.5 halfway up
        assert y == pytest.approx(bottom - (loss - 0.5) / 4 * (bottom - top), abs=0.11)
    assert all(inside(c, a[f"x{i}"], a[f"y{i}"]) for a in (c.x_axis, c.y_axis) for i in (1, 2))


def test_each_logged_step_has_a_dot_on_the_line():
    c = chart(LOSSES)
    assert c.dots == c.line


def test_the_loss_labels_read_lowest_halfway_and_highest_up_the_loss_axis_left_of_it():
    c = chart(LOSSES)
    labels = c.labels()
    assert [text for text, _, _ in labels] == ["0.5", "2.5", "4.5"]
    levels = [c.y_axis["y2"], (c.y_axis["y1"] + c.y_axis["y2"]) / 2, c.y_axis["y1"]]
    for (_, x, y), level in zip(labels, levels, strict=True):
        assert 0 < x < c.y_axis["x1"] and inside(c, x, y)
        assert 0 < y - level <= 5.5  # the baseline a little below its level: the text is centred on it
    assert all(t.attrs.get("text-anchor") == "end" for t in c.texts if t.text() in ("0.5", "2.5", "4.5"))


def test_the_step_labels_name_the_first_and_last_step_under_the_ends_of_the_step_axis():
    c = chart(LOSSES)
    first, last, title = c.text("step 10"), c.text("step 40"), c.text("step")
    assert float(first.attrs["x"]) == c.x_axis["x1"] and first.attrs.get("text-anchor", "start") == "start"
    assert float(last.attrs["x"]) == c.x_axis["x2"] and last.attrs["text-anchor"] == "end"
    assert title.attrs["text-anchor"] == "middle"
    assert abs(float(title.attrs["x"]) - (c.x_axis["x1"] + c.x_axis["x2"]) / 2) <= 12  # under the axis' middle
    for label in (first, last, title):
        x, y = float(label.attrs["x"]), float(label.attrs["y"])
        assert inside(c, x, y) and y > c.x_axis["y1"]
    assert float(title.attrs["y"]) > float(first.attrs["y"]) == float(last.attrs["y"])  # the title below them


def test_the_chart_holds_no_text_but_its_labels():
    c = chart(LOSSES)
    assert "".join(c.svg.texts).strip() == ""
    assert sorted(t.text() for t in c.texts) == ["0.5", "2.5", "4.5", "step", "step 10", "step 40"]
    assert all(not e.texts or e.tag == "text" for e in c.svg.iter())


def test_a_flat_curve_is_a_level_line_on_the_step_axis_under_a_loss_axis_one_unit_tall():
    c = chart([(1, 3.0), (2, 3.0), (3, 3.0)])
    assert [y for _, y in c.line] == [c.x_axis["y1"]] * 3
    assert [x for x, _ in c.line] == [c.x_axis["x1"], (c.x_axis["x1"] + c.x_axis["x2"]) / 2, c.x_axis["x2"]]
    assert [text for text, _, _ in c.labels()] == ["3", "3.5", "4"]


def test_a_single_logged_step_is_one_point_at_the_corner_of_the_axes():
    c = chart([(7, 1.25)])
    assert c.line == c.dots == [(c.y_axis["x1"], c.x_axis["y1"])]
    assert c.text("step").attrs["text-anchor"] == "middle"
    assert len([t for t in c.texts if t.text() == "step 7"]) == 2
    assert [text for text, _, _ in c.labels()] == ["1.25", "1.75", "2.25"]


def test_the_chart_is_640_by_260_by_default_and_its_view_box_follows_a_given_size():
    (svg,) = parse(loss_svg(LOSSES)).find_all("svg")
    assert (svg.attrs["width"], svg.attrs["height"], svg.attrs["viewbox"]) == ("640", "260", "0 0 640 260")
    c = chart(LOSSES, width=300, height=150)
    assert (c.width, c.height) == (300, 150)
    assert all(inside(c, x, y) for x, y in c.line) and c.line[-1][0] == c.x_axis["x2"] <= 300
    assert c.line[1][1] == c.y_axis["y1"] and c.line[3][1] == c.x_axis["y1"] <= 150


# --- a run folder written by hand: what the page shows of it ---------------------------------------------------


def record(ident: str, verdict: str = "accepted", **fields) -> Record:
    item = Item(id=ident, audio=AudioRef(path=fields.pop("path", None)), question=f"What is heard in {ident}?",
                answer="a bell", choices=fields.pop("choices", None), source=fields.pop("source", ""))
    cot = CoT(summary=f"S {ident}", caption=f"C {ident}", reasoning=f"R {ident}", conclusion=f"K {ident}")
    return Record(item=item, strategy=fields.pop("strategy", "direct"), verdict=verdict,
                  cot=cot if verdict == "accepted" else None, **fields)


def write_shard(path: Path, samples: list[tuple[Record, dict[str, bytes]]]) -> None:
    """A WebDataset tar as the sink writes it: per record ``KEY.json`` and its audio part."""
    with tarfile.open(path, "w") as tar:
        for rec, parts in samples:
            for ext, data in {**parts, "json": msgspec.json.encode(rec)}.items():
                info = tarfile.TarInfo(f"{rec.item.id}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def clip(fmt: str = "FLAC") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(160, dtype=np.float32), 16000, format=fmt)
    return buf.getvalue()


def run_folder(root: Path, name: str | None = "tiny", fingerprint: str | None = "abc123") -> Path:
    generate = root / "generate"
    generate.mkdir(parents=True)
    lock = (f'fingerprint = "{fingerprint}"\n' if fingerprint else "") + (
        f'[recipe.run]\nname = "{name}"\n' if name else "")
    (root / "recipe.lock.toml").write_text(lock, encoding="utf-8")
    return root


def jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")


def sections(html: str, verdict: str) -> list[Element]:
    return parse(html).find_all("section", class_=verdict)


#: elements of the pages that hold other elements, never text of their own
CONTAINERS = {"#document", "html", "head", "body", "table", "thead", "tbody", "tr", "section", "dl", "div", "details",
              "ol", "ul", "li", "figure", "svg"}


def stray_text(dom: Element) -> list[str]:
    """Text a page holds outside its headings, paragraphs, cells and labels."""
    return [f"<{e.tag}>: {t.strip()!r}" for e in dom.iter() if e.tag in CONTAINERS for t in e.texts if t.strip()]


def test_the_page_shows_the_first_accepted_records_in_shard_order_with_their_audio(tmp_path):
    run = run_folder(tmp_path / "run")
    flac, wav, mp3 = clip(), clip("WAV"), b"ID3 not really an mp3"
    write_shard(run / "generate" / "shard-000001.tar", [(record("b1"), {"wav": wav, "flac": flac})])
    write_shard(run / "generate" / "shard-000000.tar", [(record("a1"), {"mp3": mp3}), (record("a2"), {"wav": wav}),
                                                       (record("a3"), {})])
    view = collect(run, samples=3)
    assert [s.record.item.id for s in view.accepted] == ["a1", "a2", "a3"]
    assert [(s.audio, s.audio_type) for s in view.accepted] == [(mp3, "audio/mp3"), (wav, "audio/wav"),
                                                                 (None, "audio/flac")]
    assert [s.record.item.id for s in collect(run, samples=4).accepted] == ["a1", "a2", "a3", "b1"]
    assert collect(run, samples=4).accepted[3].audio == flac  # FLAC first when a sample holds several
    assert collect(run, samples=0).accepted == [] and len(collect(run).accepted) == 3  # three unless asked
    shown = sections(render(collect(run, samples=2)), "accepted")
    assert [s.attrs["data-id"] for s in shown] == ["a1", "a2"]
    src = shown[1].find_all("audio")[0].attrs["src"]
    assert src == "data:audio/wav;base64," + base64.b64encode(wav).decode()


def test_a_sample_without_embedded_audio_names_its_file_or_shows_no_player(tmp_path):
    run = run_folder(tmp_path / "run")
    write_shard(run / "generate" / "shard-000000.tar", [(record("on-disk", path="clips/bell.flac"), {}),
                                                       (record("nowhere"), {})])
    on_disk, nowhere = sections(render(collect(run)), "accepted")
    assert not on_disk.find_all("audio") and "audio: clips/bell.flac (not embedded)" in on_disk.text()
    assert not nowhere.find_all("audio") and "not embedded" not in nowhere.text()


def test_the_first_rejected_or_failed_records_are_read_across_the_rejects_files(tmp_path):
    run = run_folder(tmp_path / "run")
    generate = run / "generate"
    r = [record(f"r{i}", "rejected", reason=f"gate/no-step: {i}") for i in range(4)]
    jsonl(generate / "rejects-000000.jsonl", [msgspec.json.encode(r[0]).decode(), "  ",
                                              msgspec.json.encode(r[1]).decode()])
    jsonl(generate / "rejects-000001.jsonl", [msgspec.json.encode(record("f0", "failed", reason="teacher/timeout"))
                                              .decode(), msgspec.json.encode(r[2]).decode()])
    assert [s.record.item.id for s in collect(run, samples=3).rejected] == ["r0", "r1", "f0"]
    assert [s.record.item.id for s in collect(run, samples=2).rejected] == ["r0", "r1"]
    assert [s.record.item.id for s in collect(run, samples=9).rejected] == ["r0", "r1", "f0", "r2"]
    html = render(collect(run, samples=9))
    assert [s.attrs["data-id"] for s in sections(html, "rejected")] == ["r0", "r1", "r2"]
    assert [s.attrs["data-id"] for s in sections(html, "failed")] == ["f0"]
    assert "reason" in sections(html, "failed")[0].text() and "teacher/timeout" in sections(html, "failed")[0].text()


def test_a_rejects_line_that_is_no_record_is_refused_naming_its_file_and_line(tmp_path):
    run = run_folder(tmp_path / "run")
    rejects = run / "generate" / "rejects-000000.jsonl"
    jsonl(rejects, [msgspec.json.encode(record("r0", "rejected", reason="x")).decode(), '{"verdict": "rejected"}'])
    with pytest.raises(BadInput, match=re.escape(f"{rejects}:2: not a record")):
        collect(run, samples=2)
    assert [s.record.item.id for s in collect(run, samples=1).rejected] == ["r0"]  # the second line is not read


def test_losses_come_from_the_metrics_file_the_last_value_of_a_step_winning(tmp_path):
    run = run_folder(tmp_path / "run")
    jsonl(run / "train" / "metrics.jsonl", [{"step": 3, "loss": 2.0}, {"step": 1, "loss": 4.0}, [1, 2], 7,
                                            {"step": 2, "lr": 0.1}, {"step": 3, "loss": 1.5}, '{"step": 4, "lo'])
    jsonl(run / "logs" / "run.jsonl", [{"event": "train step", "step": 9, "loss": 9.0}])
    assert collect(run).losses == [(1, 4.0), (3, 1.5)]
    with (run / "train" / "metrics.jsonl").open("a", encoding="utf-8") as fh:  # the resumed run goes on after it
        fh.write('\n{"step": 4, "loss": 1.25}\n{"step": 5, "loss": 1.0}\n')
    view = collect(run)
    assert view.losses == [(1, 4.0), (3, 1.5), (4, 1.25), (5, 1.0)]
    assert "loss 4.0000 at step 1 → 1.0000 at step 5" in parse(render(view)).text()


def test_losses_come_from_the_run_logs_train_step_events_without_a_metrics_file(tmp_path):
    run = run_folder(tmp_path / "run")
    log = run / "logs" / "run.jsonl"
    jsonl(log, [{"event": "train step", "step": "2", "loss": "0.5"}, {"event": "eval", "step": 5, "loss": 9.0},
                {"event": "train step", "step": 1, "loss": 1}])
    with log.open("ab") as fh:
        fh.write(b'{"event": "note", "text": "\xff"}\n')  # a byte that is not UTF-8 does not stop the reading
    view = collect(run)
    assert view.losses == [(1, 1.0), (2, 0.5)]
    page = parse(render(view))
    assert "loss 1.0000 at step 1 → 0.5000 at step 2" in page.text() and page.find_all("svg", id="loss-curve")


def test_a_run_without_training_steps_says_so_and_draws_no_curve(tmp_path):
    run = run_folder(tmp_path / "run")
    jsonl(run / "logs" / "run.jsonl", [{"event": "eval", "step": 1, "loss": 1.0}])
    html = render(collect(run))
    assert collect(run).losses == [] and "No training steps logged." in html and "<svg" not in html


def test_benchmarks_are_shown_by_folder_name_with_their_plots_and_folders_without_a_report_are_left_out(tmp_path):
    run = run_folder(tmp_path / "run")
    evaluate = run / "evaluate"
    for name in ("mmar", "air-bench", "live"):  # live: not evaluated yet
        (evaluate / name / "plots").mkdir(parents=True)
    (evaluate / "mmar" / "report.md").write_text("# MMAR\n", encoding="utf-8")
    (evaluate / "air-bench" / "report.md").write_text("# AIR\n", encoding="utf-8")
    (evaluate / "notes.md").write_text("# a file, not a benchmark\n", encoding="utf-8")
    (evaluate / "mmar" / "plots" / "subset.png").write_bytes(b"\x89PNG subset")
    (evaluate / "mmar" / "plots" / "modality.png").write_bytes(b"\x89PNG modality")
    (evaluate / "mmar" / "plots" / "table.csv").write_text("a,b\n", encoding="utf-8")
    view = collect(run)
    assert [b.name for b in view.benchmarks] == ["air-bench", "mmar"]
    assert list(view.benchmarks[1].plots.items()) == [("modality", b"\x89PNG modality"), ("subset", b"\x89PNG subset")]
    dom = parse(render(view))
    shown = dom.find_all("section", class_="benchmark")
    assert [s.attrs["data-name"] for s in shown] == ["air-bench", "mmar"]
    assert [s.find_all("h3")[0].text() for s in shown] == ["AIR", "MMAR"]
    figures = shown[1].find_all("figure")
    assert [f.find_all("figcaption")[0].text() for f in figures] == ["modality", "subset"]
    img = figures[1].find_all("img")[0]
    assert img.attrs["alt"] == "mmar: subset" and img.attrs["src"] == "data:image/png;base64," + base64.b64encode(
        b"\x89PNG subset").decode()
    assert "No benchmark was evaluated." not in dom.text()
    assert "No benchmark was evaluated." in render(collect(run_folder(tmp_path / "bare")))


def test_the_run_is_named_by_its_recipe_or_else_its_folder(tmp_path):
    named = collect(run_folder(tmp_path / "one", name="quick", fingerprint="f00d"))
    assert (named.name, named.fingerprint) == ("quick", "f00d")
    dom = parse(render(named))
    assert dom.find_all("h1")[0].text() == "Run quick" and dom.find_all("title")[0].text() == "afcot run quick"
    assert dom.find_all("code")[0].text() == "f00d"
    assert f"{tmp_path / 'one'} · fingerprint f00d" in dom.find_all("p", class_="muted")[0].text()
    assert collect(run_folder(tmp_path / "two", name=None)).name == "two"
    unsigned = collect(run_folder(tmp_path / "three", fingerprint=None))
    assert unsigned.fingerprint == "" and parse(render(unsigned)).find_all("code")[0].text() == ""


def test_a_folder_that_is_no_run_is_refused_saying_why(tmp_path):
    with pytest.raises(BadInput) as refused:
        collect(tmp_path / "missing")
    assert str(refused.value) == f"{tmp_path / 'missing'}: no such run directory"
    with pytest.raises(BadInput) as refused:
        collect(tmp_path)
    assert str(refused.value) == f"{tmp_path}: not a run directory (no recipe.lock.toml)"
    (tmp_path / "recipe.lock.toml").write_text("fingerprint = [", encoding="utf-8")
    with pytest.raises(BadInput) as refused:
        collect(tmp_path)
    assert str(refused.value).startswith(f"{tmp_path / 'recipe.lock.toml'}: not valid TOML: ")


def test_records_that_cannot_be_counted_are_refused_naming_the_file_or_the_generate_folder(tmp_path):
    run = run_folder(tmp_path / "run")
    rejects = run / "generate" / "rejects-000000.jsonl"
    rejects.write_text('"just a string"\n', encoding="utf-8")
    with pytest.raises(BadInput) as refused:
        collect(run)
    assert str(refused.value) == f"{rejects}:1: not a JSON record"
    jsonl(rejects, [{"verdict": "rejected", "trace": [{"role": "alm", "prompt": 3}]}])
    with pytest.raises(BadInput) as refused:
        collect(run)
    assert str(refused.value).startswith(f"{run / 'generate'}: unreadable records: ")


def call(role: str, prompt: str, with_audio: bool = False) -> TeacherCall:
    return TeacherCall(role=role, model=f"{role}-model", prompt=prompt, reply="okay", with_audio=with_audio)


def generated_run(root: Path) -> Path:
    """Two strategies: ``direct`` (source s1) with two accepted records and a reject, ``gated`` with a reject and a
    failure; every teacher call is 16 characters (prompt and reply)."""
    run = run_folder(root)
    a1 = record("a1", source="s1", choices=["a bell", "a dog"],
                trace=[call("alm", "listen here:", True), call("llm", "think it ove"), call("llm", "x" * 12)])
    a2 = record("a2", source="s1", trace=[call("alm", "y" * 12), call("alm", "z" * 12)])
    write_shard(run / "generate" / "shard-000000.tar", [(a1, {"flac": clip()}), (a2, {"flac": clip()})])
    others = [record("r1", "rejected", source="s1", reason="gate/no-step: no steps", trace=[call("alm", "q" * 12)]),
              record("r2", "rejected", strategy="gated", reason="causality: does not follow"),
              record("f1", "failed", strategy="gated", reason="teacher/timeout: 30 s")]
    jsonl(run / "generate" / "rejects-000000.jsonl", [msgspec.json.encode(r).decode() for r in others])
    return run


def test_the_page_has_its_four_parts_and_no_text_outside_its_headings_paragraphs_and_cells(tmp_path):
    run = generated_run(tmp_path / "run")
    jsonl(run / "train" / "metrics.jsonl", [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}])
    (run / "evaluate" / "mmar" / "plots").mkdir(parents=True)
    (run / "evaluate" / "mmar" / "report.md").write_text("# MMAR\n\n| a | b |\n|---|--:|\n| x | 1 |\ntext\n")
    (run / "evaluate" / "mmar" / "plots" / "subset.png").write_bytes(b"\x89PNG")
    dom = parse(render(collect(run)))
    assert stray_text(dom) == []
    assert [(h.attrs["id"], h.text()) for h in dom.find_all("h2")] == [
        ("recipe", "Recipe"), ("generate", "Generation"), ("train", "Training"), ("benchmarks", "Benchmarks")]
    (lock,) = [d for d in dom.find_all("details") if d.find_all("summary")[0].text() == "recipe.lock.toml"]
    assert lock.find_all("pre")[0].text() == " ".join((run / "recipe.lock.toml").read_text().split())
    assert [h.text() for h in dom.find_all("h3")] == [
        "Reject reasons", "Accepted samples", "a1 · direct · accepted", "a2 · direct · accepted", "Rejected samples",
        "r1 · direct · rejected", "r2 · gated · rejected", "f1 · gated · failed", "MMAR"]
    for bare in (run_folder(tmp_path / "bare"), generated_run(tmp_path / "again")):
        assert stray_text(parse(render(collect(bare)))) == []


def test_the_yields_table_has_a_row_per_strategy_and_source_and_one_for_all(tmp_path):
    dom = parse(render(collect(generated_run(tmp_path / "run"))))
    (table,) = dom.find_all("table", id="yields")
    assert rows(table)[0] == ["strategy", "source", "items", "accepted", "rejected", "failed", "yield (%)",
                              "calls / accepted (ALM + LLM)", "tokens / accepted"]
    assert rows(table)[1:] == [
        ["direct", "s1", "3", "2", "1", "0", "66.7", "2.00 + 1.00", "12"],
        ["gated", "—", "2", "0", "1", "1", "0.0", "—", "—"],
        ["all", "—", "5", "2", "2", "1", "40.0", "2.00 + 1.00", "12"]]
    for tr in table.iter("tr"):
        numeric = [i for i, cell in enumerate(tr.children) if cell.has("class", "n")]
        assert numeric == [2, 3, 4, 5, 6, 7, 8]
    assert "Tokens are estimated as characters / 4 of every prompt and reply." in dom.text()
    (reasons,) = dom.find_all("table", id="reasons")
    assert rows(reasons)[0] == ["reason", "records"]
    assert sorted(rows(reasons)[1:]) == [["causality", "1"], ["gate/no-step", "1"]]
    assert [c.has("class", "n") for c in reasons.find_all("td")] == [False, True, False, True]


def test_a_sample_shows_its_question_choices_answer_cot_and_trace(tmp_path):
    dom = parse(render(collect(generated_run(tmp_path / "run"))))
    a1, a2 = dom.find_all("section", class_="accepted")
    assert a1.find_all("h3")[0].text() == "a1 · direct · accepted"
    fields = {dt.text(): dd.text() for dt, dd in zip(a1.find_all("dt"), a1.find_all("dd"), strict=True)}
    assert fields == {"question": "What is heard in a1?", "choices": "a bell · a dog", "answer": "a bell",
                      "SUMMARY": "S a1", "CAPTION": "C a1", "REASONING": "R a1", "CONCLUSION": "K a1"}
    assert {dt.text(): dd.text() for dt, dd in zip(a2.find_all("dt"), a2.find_all("dd"), strict=True)}["choices"] \
        == "—"
    (trace,) = a1.find_all("details", class_="trace")
    assert trace.find_all("summary")[0].text() == "teacher trace (3 calls)"
    calls = trace.find_all("li")
    assert [li.find_all("b")[0].text() for li in calls] == ["alm", "llm", "llm"]
    assert [li.find_all("span")[0].text() for li in calls] == ["alm-model · with audio", "llm-model", "llm-model"]
    assert [p.text() for p in calls[0].find_all("pre")] == ["listen here:", "→ okay"]
    assert "open" in trace.attrs and set(a2.find_all("details", class_="trace")[0].attrs) == {"class"}
    assert [len(s.find_all("div", class_="cot")) for s in (a1, a2)] == [1, 1]  # styled as the CoT


def test_a_refused_sample_shows_its_reason_and_no_cot_and_its_trace_starts_closed(tmp_path):
    dom = parse(render(collect(generated_run(tmp_path / "run"))))
    r1, r2 = dom.find_all("section", class_="rejected")
    (f1,) = dom.find_all("section", class_="failed")
    assert r1.find_all("h3")[0].text() == "r1 · direct · rejected"
    fields = {dt.text(): dd.text() for dt, dd in zip(r1.find_all("dt"), r1.find_all("dd"), strict=True)}
    assert fields == {"question": "What is heard in r1?", "choices": "—", "answer": "a bell",
                      "reason": "gate/no-step: no steps"}
    assert not r1.find_all("div", class_="cot") and "open" not in r1.find_all("details")[0].attrs
    assert not r2.find_all("details") and f1.find_all("h3")[0].text() == "f1 · gated · failed"
    accepted = dom.find_all("section", class_="accepted")
    assert "reason" not in [dt.text() for s in accepted for dt in s.find_all("dt")]


def test_a_run_with_no_accepted_or_no_rejected_record_says_none(tmp_path):
    run = run_folder(tmp_path / "run")
    write_shard(run / "generate" / "shard-000000.tar", [(record("a1"), {})])
    dom = parse(render(collect(run)))
    shown = [e.text() for e in dom.iter() if e.tag in ("h3", "p")]
    assert shown[shown.index("Rejected samples") + 1] == "none" and "Reject reasons" not in shown
    assert not dom.find_all("table", id="reasons") and stray_text(dom) == []
    run = run_folder(tmp_path / "refused")
    jsonl(run / "generate" / "rejects-000000.jsonl", [msgspec.json.encode(record("r1", "rejected")).decode()])
    dom = parse(render(collect(run)))
    assert stray_text(dom) == []
    shown = [e.text() for e in dom.iter() if e.tag in ("h3", "p")]
    assert shown[shown.index("Accepted samples") + 1] == "none" and shown[shown.index("Rejected samples") + 1] != "none"
    assert rows(parse(render(collect(run))).find_all("table", id="yields")[0])[-1][6:] == ["0.0", "—", "—"]


def test_a_run_without_records_says_so_and_has_no_yields(tmp_path):
    html = render(collect(run_folder(tmp_path / "run")))
    assert "This run has no generated records." in html and 'id="yields"' not in html
    assert "Accepted samples" not in html


def test_benchmark_markdown_becomes_headings_tables_and_paragraphs():
    text = ("# MMAR\n## By group\n####### deep\nAccuracy & <b>chance</b>\n\n"
            "| group | correct | accuracy |\n|:------|--------:|---------:|\n| AQA | 3 | 0.5 |\n| all | 4 | 0.4 |\n"
            "after the table\n| only | a head |\n")
    dom = parse(_markdown(text))
    assert [(e.tag, e.text()) for e in dom.children if e.tag != "table"] == [
        ("h3", "MMAR"), ("h4", "By group"), ("h6", "deep"), ("p", "Accuracy & <b>chance</b>"),
        ("p", "after the table")]
    table, head_only = dom.find_all("table")
    assert rows(table) == [["group", "correct", "accuracy"], ["AQA", "3", "0.5"], ["all", "4", "0.4"]]
    assert [[c.has("class", "n") for c in tr.children] for tr in table.iter("tr")] == [[False, True, True]] * 3
    assert rows(head_only) == [["only", "a head"]] and not head_only.find_all("td")
    assert "id" not in table.attrs and stray_text(dom) == []


def test_a_markdown_table_keeps_every_row_without_a_separator_and_aligns_a_head_with_only_one():
    (plain,) = parse(_markdown("| a | b |\n| 1 | 2 |\n| 3 | 4 |")).find_all("table")
    assert rows(plain) == [["a", "b"], ["1", "2"], ["3", "4"]] and not plain.find_all(class_="n")
    (head,) = parse(_markdown("| name | n |\n|------|--:|")).find_all("table")
    assert rows(head) == [["name", "n"]] and [c.has("class", "n") for c in head.find_all("th")] == [False, True]


def test_the_report_command_writes_the_page_where_asked_with_three_samples_by_default(tmp_path, capsys):
    run = run_folder(tmp_path / "run")
    write_shard(run / "generate" / "shard-000000.tar", [(record(f"a{i}"), {}) for i in range(5)])
    assert cli.main(["report", str(run)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {run / 'report.html'}"
    assert len(sections((run / "report.html").read_text(encoding="utf-8"), "accepted")) == 3
    out = tmp_path / "page.html"
    assert cli.main(["report", str(run), "--out", str(out), "--samples", "1"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert len(sections(out.read_text(encoding="utf-8"), "accepted")) == 1
    assert len(sections(write(run).read_text(encoding="utf-8"), "accepted")) == 3


def test_the_report_is_refused_for_a_negative_count_a_folder_or_a_missing_folder_as_its_file(tmp_path, capsys):
    run = run_folder(tmp_path / "run")
    assert cli.main(["report", str(run), "--samples", "-1"]) == 2
    assert "--samples -1: must be >= 0" in capsys.readouterr().err
    assert cli.main(["report", str(run), "--out", str(tmp_path)]) == 2
    assert f"{tmp_path}: is a folder; give the HTML file to write" in capsys.readouterr().err
    missing = tmp_path / "nowhere" / "page.html"
    assert cli.main(["report", str(run), "--out", str(missing)]) == 2
    assert f"{missing}: its folder {missing.parent} does not exist" in capsys.readouterr().err
    assert not (run / "report.html").exists()


def test_the_report_of_a_recipes_variants_links_each_variants_own_page(tmp_path):
    root = tmp_path / "learn"
    for name in ("cot", "plain"):
        run_folder(root / name, name=f"learn-{name}")
    write_shard(root / "cot" / "generate" / "shard-000000.tar", [(record("a1"), {})])
    (root / "compare.json").write_text(json.dumps({"variants": [{"variant": "cot"}, {"variant": "plain"}]}),
                                       encoding="utf-8")
    (root / "compare.md").write_text("| variant | accuracy |\n|---|---:|\n| cot | 0.5 |\n", encoding="utf-8")
    assert write(root, samples=0) == root / "report.html"
    dom = parse((root / "report.html").read_text(encoding="utf-8"))
    assert stray_text(dom) == [] and dom.find_all("title")[0].text() == "afcot variants learn"
    assert [(h.attrs["id"], h.text()) for h in dom.find_all("h2")] == [("variants", "Variants")]
    assert dom.find_all("h1")[0].text() == f"Variants of {root}"
    (compare,) = dom.find_all("section", id="compare")
    assert rows(compare.find_all("table")[0]) == [["variant", "accuracy"], ["cot", "0.5"]]
    assert [(a.attrs["href"], a.text()) for a in dom.find_all("a")] == [("cot/report.html", "cot"),
                                                                         ("plain/report.html", "plain")]
    for name in ("cot", "plain"):
        page = parse((root / name / "report.html").read_text(encoding="utf-8"))
        assert page.find_all("h1")[0].text() == f"Run learn-{name}" and not page.find_all("section", class_="sample")
    (root / "recipe.lock.toml").write_text('fingerprint = "f"\n', encoding="utf-8")  # a run with a comparison file
    write(root)
    assert parse((root / "report.html").read_text(encoding="utf-8")).find_all("h1")[0].text() == "Run learn"


def test_an_indented_line_that_starts_with_a_pipe_is_a_paragraph():
    dom = parse(_markdown("  | not | a table |\nafter"))
    assert [(e.tag, e.text()) for e in dom.children] == [("p", "| not | a table |"), ("p", "after")]


AUDIT_USAGE = "afcot audit RUN takes --sample, --seed and --out; LABELS, --run and --json go with score"


@pytest.mark.parametrize("extra", [["labels.json"], ["--run", "other"], ["--json"]])
def test_the_audit_of_a_run_refuses_the_options_of_score(tmp_path, capsys, extra):
    run = run_folder(tmp_path / "run")
    assert cli.main(["audit", str(run), *extra]) == 2
    assert AUDIT_USAGE in capsys.readouterr().err
    assert not (run / "audit.html").exists()


def test_audit_score_without_labels_asks_for_them_unless_a_run_folder_is_named_score(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["audit", "score"]) == 2
    asked = "afcot audit score: give the labels file, e.g. afcot audit score audit-labels.json"
    assert asked in capsys.readouterr().err
    run = run_folder(tmp_path / "score")
    write_shard(run / "generate" / "shard-000000.tar", [(record("a1"), {}), (record("a2"), {})])
    assert cli.main(["audit", "score", "--sample", "2"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == "wrote score/audit.html: label each sample, save the labels, then: afcot audit score LABELS.json"
    assert (run / "audit.html").is_file()


def test_audit_score_checks_the_labels_against_the_run_given_and_prints_indented_json(tmp_path, capsys):
    run = run_folder(tmp_path / "run")
    write_shard(run / "generate" / "shard-000000.tar", [(record("a1"), {}), (record("a2"), {})])
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"format": "afcot-audit-labels/1", "run": str(tmp_path / "moved"),
                                  "sample": ["a1", "a2"], "labels": {"a1": "follows", "a2": "does-not-follow"}}))
    assert cli.main(["audit", "score", str(labels)]) == 0
    assert capsys.readouterr().out.strip().endswith("the run was not found: give --run RUN for the causality "
                                                    "check's agreement")
    assert cli.main(["audit", "score", str(labels), "--run", str(run)]) == 0
    assert f"no labelled record of {run} carries the causality check's verdict" in capsys.readouterr().out
    assert cli.main(["audit", "score", str(labels), "--json"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('{\n  "labelled": 2,\n') and json.loads(out)["false_causality"] == 1
