"""`afcot audit`: the causality audit the paper did by hand. A seeded sample of accepted CoT records on one
self-contained page, the labels scored (false-causality rate with a 95 % Wilson interval), and the paper's causality
check measured against them; on the embedded world against the truth of the embedded LLM's planted false reasoning.
The page in a browser: tests/test_page_escaping.py (it drives tests/audit_browser_check.py)."""

import json

import msgspec
import pytest
from afcot_embedded.llm import planted_false_reasoning
from afcot_report.audit import FLAGGED, wilson

from afcot_core import cli, recipe, runner
from afcot_core.records import Record
from afcot_core.shards import iter_samples

from .htmltree import parse, remote_references

SHARE = 0.2


def _run(plugins, out, rejects: bool, items: int = 160):
    parsed = recipe.load("quickstart", plugins, [
        f"generate.source.items={items}", "generate.source.classification_fraction=0.0", "generate.shard_size=40",
        f"generate.llm.false_reasoning={SHARE}", "generate.strategies.aqa.causality=true",
        f"generate.strategies.aqa.causality_rejects={str(rejects).lower()}"])
    runner.run(parsed, plugins, out, ["generate"], show_progress=False)
    return out


@pytest.fixture(scope="module")
def kept_run(plugins, tmp_path_factory):
    """AQA items of the embedded world, a fifth of their REASONING planted false, the causality check noting its
    verdict without rejecting."""
    return _run(plugins, tmp_path_factory.mktemp("audit") / "run", rejects=False)


def _accepted(run):
    return [msgspec.json.decode(p["json"], type=Record) for s in sorted(run.glob("generate/shard-*.tar"))
            for _, p in iter_samples(s)]


def _truth(record):
    return "does-not-follow" if planted_false_reasoning(record) else "follows"


@pytest.mark.parametrize("k, n, lo, hi", [
    # Newcombe (1998), Stat. Med. 17:857, Table I, method 3 (the Wilson score interval without continuity correction)
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
    (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0)])
def test_the_wilson_interval_matches_published_values(k, n, lo, hi):
    assert wilson(k, n) == pytest.approx((lo, hi), abs=6e-5)


def test_the_wilson_interval_of_no_labels_is_everything():
    assert wilson(0, 0) == (0.0, 1.0)


def test_the_embedded_llm_plants_a_seeded_share_of_false_reasoning(kept_run, plugins, tmp_path):
    accepted = _accepted(kept_run)
    planted = [r for r in accepted if planted_false_reasoning(r)]
    assert 0.1 <= len(planted) / len(accepted) <= 0.3
    assert {planted_false_reasoning(r) for r in planted} >= {"unsupported", "asserted"}
    again = _accepted(_run(plugins, tmp_path / "again", rejects=False))
    assert [r.item.id for r in again if planted_false_reasoning(r)] == [r.item.id for r in planted]


def test_the_causality_check_is_measured_against_the_planted_truth(kept_run):
    """The figure in docs/algorithms.md: positive class "does not follow"."""
    accepted = _accepted(kept_run)
    tp = sum(FLAGGED in r.codes and _truth(r) == "does-not-follow" for r in accepted)
    fp = sum(FLAGGED in r.codes and _truth(r) == "follows" for r in accepted)
    fn = sum(FLAGGED not in r.codes and _truth(r) == "does-not-follow" for r in accepted)
    assert tp / (tp + fp) >= 0.9 and tp / (tp + fn) >= 0.8
    assert fn > 0  # an asserted conclusion that names its option fools the check: recall below 1


def test_with_rejects_the_check_drops_what_it_flags(plugins, tmp_path, kept_run):
    rejected_run = _run(plugins, tmp_path / "rejecting", rejects=True)
    kept = {r.item.id: r for r in _accepted(kept_run)}
    accepted = {r.item.id for r in _accepted(rejected_run)}
    assert accepted == {i for i, r in kept.items() if FLAGGED not in r.codes}
    rejects = [json.loads(line) for f in rejected_run.glob("generate/rejects-*.jsonl")
               for line in f.read_text().splitlines()]
    assert {r["item"]["id"] for r in rejects if r["reason"].startswith("causality")} == set(kept) - accepted


def _page(run, tmp_path, *args):
    out = tmp_path / "audit.html"
    assert cli.main(["audit", str(run), "--out", str(out), *args]) == 0
    html = out.read_text(encoding="utf-8")
    dom = parse(html)
    return html, dom, json.loads(dom.find_all("script", id="audit-meta")[0].text())


def test_the_page_holds_one_entry_per_sample_with_its_audio_text_and_choices(kept_run, tmp_path):
    html, dom, meta = _page(kept_run, tmp_path, "--sample", "12", "--seed", "4")
    accepted = {r.item.id: r for r in _accepted(kept_run)}
    entries = dom.find_all("section", class_="audit-sample")
    assert len(entries) == 12 and [e.attrs["data-id"] for e in entries] == meta["ids"]
    assert remote_references(html) == []
    for entry in entries:
        record = accepted[entry.attrs["data-id"]]
        assert entry.find_all("audio")[0].attrs["src"].startswith("data:audio/flac;base64,")
        shown = {dd.attrs["class"]: dd.text() for dd in entry.find_all("dd")}
        assert shown["reasoning"] == " ".join(record.cot.reasoning.split())
        assert shown["conclusion"] == record.cot.conclusion and shown["question"] == record.item.question
        assert shown["answer"] == record.item.answer
        radios = entry.find_all("input", type="radio")
        assert sorted(r.attrs["value"] for r in radios) == ["does-not-follow", "follows"]
        assert len({r.attrs["name"] for r in radios}) == 1
    assert dom.find_all("button", id="save") and dom.find_all("input", id="load", type="file")


def test_the_sample_is_a_seeded_random_draw_of_accepted_records(kept_run, tmp_path):
    ids = [r.item.id for r in _accepted(kept_run)]
    first = _page(kept_run, tmp_path, "--sample", "10", "--seed", "3")[2]["ids"]
    assert _page(kept_run, tmp_path, "--sample", "10", "--seed", "3")[2]["ids"] == first
    other = _page(kept_run, tmp_path, "--sample", "10", "--seed", "4")[2]["ids"]
    assert other != first and set(first) <= set(ids) and len(set(first)) == 10
    assert first != ids[:10] and sorted(first) != first  # drawn, not the first records in order
    assert sorted(_page(kept_run, tmp_path, "--sample", "100000")[2]["ids"]) == sorted(ids)


def _labels(tmp_path, meta, labels, name="labels.json"):
    path = tmp_path / name
    path.write_text(json.dumps({**{k: meta[k] for k in ("format", "run", "name", "fingerprint", "seed")},
                                "sample": meta["ids"], "labels": labels}), encoding="utf-8")
    return path


def test_score_gives_the_rate_its_interval_and_the_checks_agreement(kept_run, tmp_path, capsys):
    _, _, meta = _page(kept_run, tmp_path, "--sample", "50")
    accepted = {r.item.id: r for r in _accepted(kept_run)}
    truth = {i: _truth(accepted[i]) for i in meta["ids"][:-2]}  # two left unlabelled
    for i in [i for i, v in truth.items() if v == "follows"][:2]:  # where the annotator and the plant disagree
        truth[i] = "does-not-follow"
    capsys.readouterr()
    assert cli.main(["audit", "score", str(_labels(tmp_path, meta, truth)), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    k = sum(v == "does-not-follow" for v in truth.values())
    flagged = {i for i in truth if FLAGGED in accepted[i].codes}
    wrong = {i for i, v in truth.items() if v == "does-not-follow"}
    assert (got["labelled"], got["unlabelled"], got["false_causality"]) == (48, 2, k)
    assert got["rate"] == pytest.approx(k / 48) and got["interval_95"] == pytest.approx(list(wilson(k, 48)))
    check = got["check"]
    assert check["positive"] == "does-not-follow" and check["checked"] == 48
    assert (check["tp"], check["fp"], check["fn"]) == (len(flagged & wrong), len(flagged - wrong), len(wrong - flagged))
    assert check["precision"] == pytest.approx(len(flagged & wrong) / len(flagged))
    assert check["recall"] == pytest.approx(len(flagged & wrong) / len(wrong))
    assert flagged & wrong and check["precision"] != check["recall"]
    assert cli.main(["audit", "score", str(tmp_path / "labels.json")]) == 0
    text = capsys.readouterr().out
    assert f"{k} of 48" in text and "95 % Wilson interval" in text and "precision" in text and "recall" in text


def test_hand_made_labels_score_to_known_figures(kept_run, tmp_path, capsys):
    """3 of 8 do not follow: 37.5 %, Wilson 13.7 % – 69.4 %; the check's confusion from the records' codes."""
    _, _, meta = _page(kept_run, tmp_path, "--sample", "8", "--seed", "11")
    labels = {i: ("does-not-follow" if n < 3 else "follows") for n, i in enumerate(meta["ids"])}
    capsys.readouterr()
    assert cli.main(["audit", "score", str(_labels(tmp_path, meta, labels)), "--run", str(kept_run), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["rate"] == 0.375 and got["interval_95"] == pytest.approx([0.1368, 0.6943], abs=1e-4)


@pytest.mark.parametrize("case", ["missing", "malformed", "not-labels", "unknown-id", "outside-sample", "bad-label",
                                  "not-in-run"])
def test_bad_labels_exit_2_naming_the_file_and_record(kept_run, tmp_path, capsys, case):
    _, _, meta = _page(kept_run, tmp_path, "--sample", "5")
    path = tmp_path / "labels.json"
    if case == "malformed":
        path.write_text('{"format": "afcot-audit-labels/1", "labels": {', encoding="utf-8")
    elif case == "not-labels":
        path.write_text('[1, 2]', encoding="utf-8")
    elif case == "unknown-id":
        _labels(tmp_path, meta, {"no-such-item": "follows"})
    elif case == "outside-sample":  # a record of the run, but not one the page showed
        other = next(r.item.id for r in _accepted(kept_run) if r.item.id not in meta["ids"])
        _labels(tmp_path, meta, {other: "follows"})
    elif case == "bad-label":
        _labels(tmp_path, meta, {meta["ids"][0]: "maybe"})
    elif case == "not-in-run":
        _labels(tmp_path, {**meta, "ids": []}, {"embedded-0-999999": "follows"})
    capsys.readouterr()
    assert cli.main(["audit", "score", str(path), "--run", str(kept_run)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    if case in ("unknown-id", "not-in-run"):
        assert ("no-such-item" if case == "unknown-id" else "embedded-0-999999") in err
    if case == "outside-sample":
        assert "not in the audited sample" in err
    if case == "bad-label":
        assert meta["ids"][0] in err and "maybe" in err


def test_audit_of_a_folder_that_is_no_run_exits_2(tmp_path, capsys):
    assert cli.main(["audit", str(tmp_path / "nowhere")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert cli.main(["audit", str(tmp_path), "--sample", "0"]) == 2
