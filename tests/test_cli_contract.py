"""The command line's contract: a closed pipe ends quietly with 0, bad input exits 2 with a message naming it."""

import json
import os
import re
import subprocess
import sys

import pytest

from afcot_core import cli
from afcot_core.weights import missing_weights

from .conftest import QUICKSTART, ROOT, GonePipe, run_cli


def _closed_pipe(*args: str, stderr: bool = False) -> subprocess.CompletedProcess:
    """Run the CLI with a stdout (and ``stderr``: a stderr) whose reader is already gone (``afcot ... | head``
    once head has left)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "afcot_core.cli", *args], stdout=write, text=True, cwd=ROOT,
                              stderr=write if stderr else subprocess.PIPE, timeout=120)
    finally:
        os.close(write)


@pytest.mark.parametrize("args", [("plugins", "list"), ("plugins", "list", "--json"),
                                  ("recipe", "plan", str(QUICKSTART))])
def test_a_closed_pipe_ends_quietly_with_0(args):
    result = _closed_pipe(*args)
    assert result.returncode == 0, result.stderr
    for noise in ("BrokenPipe", "Traceback", "Exception ignored"):
        assert noise not in result.stderr, result.stderr


def test_output_going_away_mid_run_neither_ends_the_run_nor_lies_about_it(tmp_path):
    out = tmp_path / "run"
    result = _closed_pipe("recipe", "run", str(QUICKSTART), "--stages", "generate", "--out", str(out),
                          "--set", "generate.source.items=12", "--set", "generate.shard_size=6", stderr=True)
    assert result.returncode == 0
    events = [json.loads(line)["event"] for line in (out / "logs" / "run.jsonl").read_text().splitlines()]
    assert events[-1] == "stage finished"
    assert len(list((out / "generate").glob("*.done.json"))) == 2


def test_a_command_writing_to_a_gone_stderr_goes_on_to_its_own_exit_code(tmp_path, monkeypatch):
    from afcot_core.hookspecs import hookimpl
    from afcot_core.plugins import load

    def work(args) -> int:
        print("a library's progress line", file=sys.stderr)
        (tmp_path / "done").write_text("the rest of the work")
        return 3

    class Chatty:
        @hookimpl
        def register_commands(self, register):
            register("chatty", "writes to stderr, then works", lambda parser: None, work)

    plugins = load(extra={"chatty": Chatty()})
    monkeypatch.setattr(cli, "_plugins", lambda: plugins)
    monkeypatch.setattr(sys, "stderr", GonePipe())
    assert cli.main(["chatty"]) == 3
    assert (tmp_path / "done").exists()


def _manifest(tmp_path, lines):
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


LINES = [{"id": f"i{n}", "audio": f"{n}.wav", "question": "What is heard?", "answer": "a dog"} for n in range(3)]


def _source(**table) -> str:
    return "generate.source={" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in table.items()) + "}"


@pytest.mark.parametrize("command", [("recipe", "run", str(QUICKSTART), "--stages", "generate"),
                                     ("recipe", "plan", str(QUICKSTART)),
                                     ("bench", "run", "embedded-eval", "--model", "embedded-alm"),
                                     ("recipe", "run", str(QUICKSTART), "--stages", "generate", "--set", "run.out=")])
def test_an_out_that_is_a_file_exits_2_naming_it(tmp_path, capsys, command):
    target = tmp_path / "taken.txt"
    target.write_text("not a folder")
    args = [a + str(target) if a == "run.out=" else a for a in command]
    code, _, err = run_cli(capsys, *args, *([] if "run.out=" in command else ["--out", str(target)]))
    assert code == 2, err
    assert str(target) in err and "is a file" in err
    assert target.read_text() == "not a folder"


def test_empty_stages_are_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "recipe", "run", str(QUICKSTART), "--stages", "", "--out", str(tmp_path / "o"))
    assert code == 2 and "--stages" in err
    assert not (tmp_path / "o").exists()
    code, _, err = run_cli(capsys, "recipe", "plan", str(QUICKSTART), "--stages", " , ")
    assert code == 2 and "names no stage" in err
    code, _, err = run_cli(capsys, "recipe", "run", str(QUICKSTART), "--set", "run.stages=[]", "--out", str(tmp_path))
    assert code == 2 and "run.stages is empty" in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("case", "expect"), [
    ("folder", "is a folder, not"),
    ("empty", "holds no items"),
    ("audio_root", "audio_root"),
    ("limit", "limit = -1: must be at least 1"),
])
def test_bad_manifests_exit_2_naming_what_is_wrong(tmp_path, capsys, case, expect):
    manifest = _manifest(tmp_path, LINES)
    table = {"use": "manifest", "path": str(manifest)}
    if case == "folder":
        table["path"] = str(tmp_path)
    elif case == "empty":
        manifest.write_text("\n\n")
    elif case == "audio_root":
        table["audio_root"] = str(tmp_path / "no-such-folder")
    else:
        table["limit"] = -1
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "recipe", "run", str(QUICKSTART), "--stages", "generate", "--out", str(out),
                        "--set", _source(**table))
    assert code == 2, err
    assert expect in err
    named = {"folder": table["path"], "empty": str(manifest), "audio_root": table.get("audio_root"),
             "limit": "[generate.source]"}[case]
    assert named in err
    assert not out.exists()


def test_a_manifest_limit_keeps_exactly_that_many_items(tmp_path, plugins):
    from afcot_io.manifest import ManifestConfig, ManifestSource

    manifest = _manifest(tmp_path, LINES)
    assert ManifestSource(ManifestConfig(path=str(manifest))).count() == 3
    assert ManifestSource(ManifestConfig(path=str(manifest), limit=2)).count() == 2
    assert ManifestSource(ManifestConfig(path=str(manifest), limit=10)).count() == 3


def _missing(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("missing:")]


def test_plan_reports_the_checkpoint_an_evaluate_only_run_lacks(tmp_path, capsys):
    out = tmp_path / "run"
    code, text, _ = run_cli(capsys, "recipe", "plan", str(QUICKSTART), "--stages", "evaluate", "--out", str(out))
    assert code == 2  # a run would be refused: the plan says so in its exit code too
    [missing] = _missing(text)
    assert "'{run}/train/final' is made by the train stage" in missing and str(out / "train" / "final") in missing
    code, _, err = run_cli(capsys, "recipe", "run", str(QUICKSTART), "--stages", "evaluate", "--out", str(out))
    assert code == 2 and "train/final" in err
    assert not out.exists()
    (out / "generate").mkdir(parents=True)  # shards of an earlier run, for the train stage
    code, text, _ = run_cli(capsys, "recipe", "plan", str(QUICKSTART), "--stages", "train,evaluate", "--out", str(out))
    assert _missing(text) == [] and "all inputs present" in text  # the train stage of this run makes it
    (out / "train" / "final").mkdir(parents=True)
    code, text, _ = run_cli(capsys, "recipe", "plan", str(QUICKSTART), "--stages", "evaluate", "--out", str(out))
    assert _missing(text) == []  # an earlier run made it


def test_the_missing_weights_hint_names_hf_download_and_never_downloads_a_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    [hub] = missing_weights("SomeOrg/some-model")
    assert "`hf download SomeOrg/some-model`" in hub and "huggingface-cli" not in hub
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    for path in ("./checkpoints/final", "/models/af3", "~/models/af3", "../af3", "checkpoints/run/final",
                 "models/af3"):
        [local] = missing_weights(path)
        assert path in local and "download" not in local, local


def _tar(path, members: dict[str, bytes]) -> None:
    import io
    import tarfile

    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_inspect_names_the_file_and_line_it_cannot_read(tmp_path, capsys):
    gen = tmp_path / "run" / "generate"
    gen.mkdir(parents=True)
    _tar(gen / "shard-000000.tar", {"k1.json": json.dumps({"item": {"question": "q", "answer": "a"}}).encode(),
                                    "k1.txt": b"<caption>x</caption>"})
    (gen / "rejects-000000.jsonl").write_text('{"reason": "format: too short"}\n{"reason": "fo\n')
    code, _, err = run_cli(capsys, "inspect", str(tmp_path / "run"))
    assert code == 2 and f"{gen / 'rejects-000000.jsonl'}:2: not a JSON record" in err
    _tar(gen / "shard-000000.tar", {"k1.json": b"{not json", "k1.txt": b"\xff\xfe"})
    code, _, err = run_cli(capsys, "inspect", str(gen / "shard-000000.tar"))
    assert code == 2 and "shard-000000.tar: k1.json: not a JSON record" in err


def test_a_manifest_with_a_byte_order_mark_reads_and_bad_utf8_names_its_line(tmp_path):
    from afcot_io.manifest import read_manifest

    from afcot_core.errors import BadInput

    path = tmp_path / "items.jsonl"
    lines = [json.dumps(line).encode() for line in LINES]
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    assert [line.id for line in read_manifest(path)] == ["i0", "i1", "i2"]
    path.write_bytes(lines[0] + b"\n" + lines[1].replace(b"1.wav", b"\xff.wav") + b"\n")
    with pytest.raises(BadInput, match=f"{path}:2: "):
        read_manifest(path)


def test_plan_of_train_alone_names_the_generate_folder_it_lacks(tmp_path, capsys):
    out = tmp_path / "run"
    args = ("recipe", "plan", str(QUICKSTART), "--stages", "train", "--out", str(out))
    code, stdout, _ = run_cli(capsys, *args)
    assert code == 2 and "train.data: '{run}/generate' is made by the generate stage" in stdout
    assert "all inputs present" not in stdout
    (out / "generate").mkdir(parents=True)
    code, stdout, _ = run_cli(capsys, *args)
    assert code == 0 and "all inputs present" in stdout


def test_a_shard_whose_every_item_lacks_its_audio_exits_2_naming_audio_root(tmp_path, capsys):
    """A wrong ``audio_root`` (a folder, but not the one holding the files) stops the run at its first shard; a
    few missing files only reject their own items."""
    import numpy as np
    import soundfile

    manifest = _manifest(tmp_path, LINES)
    wrong = tmp_path / "elsewhere"
    wrong.mkdir()
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "recipe", "run", str(QUICKSTART), "--stages", "generate", "--out", str(out),
                        "--set", _source(use="manifest", path=str(manifest), audio_root=str(wrong)))
    assert code == 2, err
    said = (r"\[generate\.source\] every item of shard 0 \(3\) was rejected for missing or unreadable audio, "
            r"e\.g\. i0: audio: [^\n]*/0\.wav[^\n]*; check the source's audio_root = " + re.escape(repr(str(wrong))))
    assert re.search(said, err), err
    right = tmp_path / "audio"
    right.mkdir()
    for n in (0, 1):  # 2.wav stays missing
        soundfile.write(right / f"{n}.wav", np.zeros(16000, dtype="float32"), 16000)
    out = tmp_path / "run2"
    code, _, err = run_cli(capsys, "recipe", "run", str(QUICKSTART), "--stages", "generate", "--out", str(out),
                        "--set", _source(use="manifest", path=str(manifest), audio_root=str(right)))
    assert code == 0, err
    stats = json.loads((out / "generate" / "stats.json").read_text())
    assert stats["total"]["items"] == 3 and stats["total"]["reject_reasons"].get("audio") == 1
