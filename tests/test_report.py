"""`afcot report RUN`: one self-contained page with yields, samples (audio, CoT, trace), loss curve and benchmarks."""

import base64
import json
from collections import Counter

import msgspec
import pytest

from afcot_core import cli, recipe, runner
from afcot_core.records import Record
from afcot_core.shards import iter_samples, read_markers

from .htmltree import parse, remote_references, rows


@pytest.fixture(scope="module")
def run_dir(plugins, tmp_path_factory):
    """A real run (generate, evaluate with the embedded ALM as the model) plus the trainer's metrics file."""
    out = tmp_path_factory.mktemp("report") / "run"
    parsed = recipe.load("quickstart", plugins, ["generate.source.items=24", "generate.shard_size=12",
                                                 "evaluate.model={use='embedded-alm'}",
                                                 "evaluate.benchmarks=[{use='embedded-eval', items=6}]"])
    runner.run(parsed, plugins, out, ["generate", "evaluate"], show_progress=False)
    # train/metrics.jsonl as the trainers write it: one line per optimiser step; a resume rewrites step 2
    steps = [(1, 5.5), (2, 6.0), (3, 4.75), (2, 5.0), (3, 4.5), (4, 4.25)]
    (out / "train").mkdir()
    (out / "train" / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": v, "lr": 1e-3}) + "\n"
                                                         for s, v in steps) + '{"step": 5, "lo')
    return out


@pytest.fixture(scope="module")
def page(run_dir):
    assert cli.main(["report", str(run_dir), "--samples", "2"]) == 0
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    return html, parse(html)


def _records(run_dir):
    accepted = {k: (msgspec.json.decode(p["json"], type=Record), p) for s in sorted(run_dir.glob("generate/*.tar"))
                for k, p in iter_samples(s)}
    rejected = [msgspec.json.decode(line, type=Record) for f in sorted(run_dir.glob("generate/rejects-*.jsonl"))
                for line in f.read_text().splitlines()]
    return accepted, rejected


def test_yields_table_counts_every_record_by_strategy(run_dir, page):
    _, dom = page
    accepted, rejected = _records(run_dir)
    table = rows(dom.find_all("table", id="yields")[0])
    assert table[0][:7] == ["strategy", "source", "items", "accepted", "rejected", "failed", "yield (%)"]
    by_strategy = Counter(r.strategy for r, _ in accepted.values())
    refused = Counter(r.strategy for r in rejected)
    for name in by_strategy | refused:
        row = next(r for r in table if r[0] == name)
        assert row[2:5] == [str(by_strategy[name] + refused[name]), str(by_strategy[name]), str(refused[name])]
    total = next(r for r in table if r[0] == "all")
    assert int(total[3]) == sum(m.counts.accepted for m in read_markers(run_dir / "generate"))
    reasons = rows(dom.find_all("table", id="reasons")[0])[1:]
    assert sum(int(n) for _, n in reasons) == len(rejected)


def test_samples_carry_their_audio_cot_and_trace(run_dir, page):
    _, dom = page
    accepted, _ = _records(run_dir)
    shown = dom.find_all("section", class_="accepted")
    assert len(shown) == 2
    for section in shown:
        record, parts = accepted[section.attrs["data-id"]]
        src = section.find_all("audio")[0].attrs["src"]
        assert src.startswith("data:audio/flac;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == parts["flac"]
        for part in (record.cot.caption, record.cot.reasoning, record.cot.conclusion):
            assert " ".join(part.split()) in section.text()
        trace = section.find_all("details", class_="trace")[0]
        assert f"({len(record.trace)} calls)" in trace.text() and record.trace[0].reply.split()[0] in trace.text()
    refused = dom.find_all("section", class_="rejected")
    assert len(refused) == 2 and all("reason" in s.text() for s in refused)


def test_loss_curve_follows_the_metrics_after_a_resume(page):
    _, dom = page
    svg = dom.find_all("svg", id="loss-curve")[0]
    points = svg.find_all("polyline")[0].attrs["points"].split()
    assert len(points) == 4  # steps 1..4, the rewritten step 2 once, the torn line skipped
    ys = [float(p.split(",")[1]) for p in points]
    assert ys == sorted(ys)  # 5.5, 5.0, 4.5, 4.25: falling loss is drawn going down the page (rising y)
    assert "5.5000 at step 1 → 4.2500 at step 4" in dom.text()


def test_benchmark_tables_and_plots_are_inline(run_dir, page):
    html, dom = page
    bench = dom.find_all("section", class_="benchmark")[0]
    assert bench.attrs["data-name"] == "embedded-eval"
    report = json.loads((run_dir / "evaluate/embedded-eval/report.json").read_text())
    overall = rows(bench.find_all("table")[0])
    assert overall[1][1:3] == [str(report["overall"]["correct"]), str(report["overall"]["total"])]
    img = bench.find_all("img", class_="plot")[0]
    png = (run_dir / "evaluate/embedded-eval/plots/subset.png").read_bytes()
    assert base64.b64decode(img.attrs["src"].split(",", 1)[1]) == png
    assert remote_references(html) == []


def test_remote_reference_scan_finds_fetched_urls():
    page = ('<html><head><link rel=stylesheet href="https://cdn.example/x.css"><style>@import "a.css";'
            'b{background:url(http://x/y.png)}</style></head><body><img src="data:image/png;base64,AA">'
            '<a href="#top">top</a><script src="/app.js"></script></body></html>')
    assert len(remote_references(page)) == 4


def test_not_a_run_exits_2(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "not a run directory (no recipe.lock.toml)" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path), "--samples", "-1"]) == 2
