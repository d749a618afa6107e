"""A wheel built from the tree installs into a fresh venv and runs the built-in quickstart from the installed package.

Kept offline and fast: the fresh venv sees the dev venv's third-party packages through a ``.pth`` line, and afcot
itself comes only from the wheel (``--no-deps``); everything runs from a temporary folder, away from the tree.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from .conftest import ROOT


def _tree_copy(target: Path) -> Path:
    """The project's files as git sees them (tracked and new, not ignored): no stale build folders ride along."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            dest.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, dest)
    return target


def test_wheel_installs_and_runs_quickstart_outside_the_tree(tmp_path):
    src = _tree_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(src)], check=True, capture_output=True)
    wheel = next(dist.glob("afcot-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("afcot_recipes/quickstart.toml", "afcot_recipes/data/example_items.jsonl",
                    "afcot_devtools/plugin_template/roles/validator.py.tmpl", "afcot_report/page.py",
                    "afcot_embedded/ontology.json"):
        assert shipped in names, shipped
    assert any(n.startswith("afcot_recipes/data/audio/") and n.endswith(".flac") for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dev-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")  # third-party packages only
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HF_HUB_OFFLINE"] = "1"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True,
                   capture_output=True, env=env)

    work = tmp_path / "elsewhere"
    work.mkdir()
    probe = ("import afcot_core, afcot_report; from afcot_core import catalog; "
             "print(afcot_core.__file__); print(afcot_report.__file__); print(catalog.path('quickstart'))")
    where = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=work, env=env,
                           check=True).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), where

    afcot = venv / "bin" / "afcot"
    run = subprocess.run([afcot, "recipe", "run", "quickstart", "--out", "run", "--quiet",
                          "--stages", "generate,evaluate", "--set", "generate.source.items=8",
                          "--set", "evaluate.model={use='embedded-alm'}",
                          "--set", "evaluate.benchmarks=[{use='embedded-eval', items=4}]"],
                         capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "warning" not in run.stderr
    assert list((work / "run" / "generate").glob("shard-*.tar"))
    assert (work / "run" / "evaluate" / "embedded-eval" / "report.md").is_file()
    report = subprocess.run([afcot, "report", "run"], capture_output=True, text=True, cwd=work, env=env)
    assert report.returncode == 0, report.stderr
