"""A third-party plugin installed with pip is found through its entry point and runs in a recipe."""

import json
import subprocess
import sys

from .conftest import QUICKSTART, afcot


def test_pip_installed_plugin_registers_and_validates(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(QUICKSTART.parent.parent / "examples" / "afcot-example-plugin")],
                   check=True, capture_output=True)
    env = {"PYTHONPATH": str(target)}
    listing = json.loads(afcot("plugins", "list", "--json", env=env).stdout)
    assert "min-reasoning-words" in listing["validator"]
    out = tmp_path / "run"
    result = afcot("recipe", "run", str(QUICKSTART), "--out", str(out), "--quiet", "--stages", "generate",
                   "--set", "generate.source.items=20",
                   "--set", 'generate.validators=[{use="min-reasoning-words", words=1000}]', env=env)
    assert result.returncode == 0, result.stderr
    rejects = [json.loads(x)["reason"] for x in (out / "generate/rejects-000000.jsonl").read_text().splitlines()]
    assert len(rejects) == 20  # nothing the embedded teachers write reaches 1000 words
    assert sum(r.startswith("min-reasoning-words: reasoning has") for r in rejects) >= 15
