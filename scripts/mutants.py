"""Mutation testing of one group of modules: ``python scripts/mutants.py GROUP [mutmut run args]``.

The groups (modules to mutate, the tests that guard them) are ``[tool.afcot.mutants.GROUP]`` in pyproject.toml;
``[tool.mutmut]`` holds the options they share. mutmut names a mutant after its file's path and the plugins are
imported as top-level packages (``afcot_qwen``), so each group runs in a copy of the tree of its own,
``.nox/mutants-GROUP``, that also lays every plugin package out at its top level and whose ``[tool.mutmut]`` is the
group's. The copy is renewed on every run (mtimes kept, so mutmut re-tests only what changed); mutmut's results, the
copy's ``mutants/`` folder, stay. ``nox -s mutants -- GROUP`` runs this in the session's virtual environment.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(".git", ".nox", ".venv", "runs", "mutants", "__pycache__", "*.egg-info", ".*_cache",
                              ".hypothesis", "build")


def groups(pyproject: dict) -> dict[str, dict]:
    """The groups of pyproject.toml's ``[tool.afcot.mutants]``: name -> {paths, tests}."""
    return pyproject["tool"]["afcot"]["mutants"]


def mutmut_table(shared: dict, group: dict) -> str:
    """The copy's ``[tool.mutmut]``: the shared options with the group's modules, source folders and tests."""
    table = dict(shared)
    table["only_mutate"] = [f"*{path}*" if path.endswith("/") else f"*{path}" for path in group["paths"]]
    table["source_paths"] = sorted({path.split("/")[0] + "/" for path in group["paths"]})
    table["pytest_add_cli_args_test_selection"] = list(group["tests"])
    return "[tool.mutmut]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in table.items())


def lay_out(name: str) -> Path:
    """A fresh copy of the tree for group ``name``, its results kept, its pyproject set to the group."""
    text = (ROOT / "pyproject.toml").read_text()
    pyproject = tomllib.loads(text)
    known = groups(pyproject)
    if name not in known:
        raise SystemExit(f"unknown mutation group {name!r}; pyproject.toml [tool.afcot.mutants] has: "
                         + ", ".join(sorted(known)))
    tree = ROOT / ".nox" / f"mutants-{name}"
    tree.mkdir(parents=True, exist_ok=True)
    for old in tree.iterdir():
        if old.name != "mutants":
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    shutil.copytree(ROOT, tree, ignore=SKIP, dirs_exist_ok=True)
    for package in (ROOT / "plugins").glob("afcot_*"):
        if (package / "__init__.py").exists():
            shutil.copytree(package, tree / package.name, ignore=SKIP, dirs_exist_ok=True)
    own = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)
    (tree / "pyproject.toml").write_text(own.rstrip() + "\n\n" + mutmut_table(pyproject["tool"]["mutmut"],
                                                                            known[name]))
    return tree


def main(argv: list[str]) -> int:
    if not argv:
        known = groups(tomllib.loads((ROOT / "pyproject.toml").read_text()))
        print("usage: python scripts/mutants.py GROUP [mutmut run args]; groups: " + ", ".join(sorted(known)))
        return 2
    tree = lay_out(argv[0])
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    mutmut = [sys.executable, "-m", "mutmut"]
    code = subprocess.call([*mutmut, "run", *(argv[1:] or ["--max-children", "2"])], cwd=tree, env=env)
    subprocess.call([*mutmut, "results"], cwd=tree, env=env)
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
