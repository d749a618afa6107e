"""kill -9 at random moments, again and again: the final shards equal an uninterrupted run's, byte for byte."""

import os
import random
import signal
import subprocess
import sys
import tarfile
import time

from afcot_core import recipe as recipes
from afcot_core import runner

from .conftest import QUICKSTART, afcot

SETS = ["generate.source.items=160", "generate.shard_size=4", "generate.concurrency=8"]
KILLS = 10


def files(out):
    gen = out / "generate"
    return {p.name: p.read_bytes() for p in sorted([*gen.glob("shard-*.tar"), *gen.glob("rejects-*.jsonl")])}


def markers(out) -> int:
    return len(list((out / "generate").glob("*.done.json")))


def test_ten_random_kills_then_a_rerun_equal_an_uninterrupted_run(plugins, tmp_path):
    reference = tmp_path / "reference"
    runner.run(recipes.load(QUICKSTART, plugins, SETS), plugins, reference, stages=["generate"], show_progress=False)
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "afcot_core.cli", "recipe", "run", str(QUICKSTART), "--out", str(out), "--quiet",
            "--stages", "generate", *(x for s in SETS for x in ("--set", s))]
    rng = random.Random(1)
    killed = 0
    for _ in range(KILLS):
        before = markers(out)
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
        deadline = time.time() + 10
        while markers(out) <= before and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.2))  # somewhere in the next shard's items, its tar write or its marker
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait()
    done = markers(out)
    assert killed == KILLS and 0 < done < 40, f"{killed} kills, {done} of 40 shards done before the last run"
    result = afcot("recipe", "run", str(QUICKSTART), "--out", str(out), "--quiet", "--stages", "generate",
                   *(x for s in SETS for x in ("--set", s)))
    assert result.returncode == 0, result.stderr
    assert files(out) == files(reference)
    for shard in (out / "generate").glob("shard-*.tar"):
        with tarfile.open(shard) as tar:
            assert all(member.isfile() for member in tar.getmembers())
    assert not list(out.rglob("*.tmp"))
