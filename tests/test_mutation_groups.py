"""The mutation groups of pyproject.toml (``nox -s mutants -- GROUP``) name modules and tests that exist."""

import importlib.util
import sys
import tomllib

from .conftest import ROOT


def _mutants_script():
    spec = importlib.util.spec_from_file_location("mutants_script", ROOT / "scripts" / "mutants.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_group_names_modules_and_tests_that_exist():
    script = _mutants_script()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    groups = script.groups(pyproject)
    assert {"core", "core-data", "core-rest", "qwen", "paper", "io", "report", "benchmarks", "negatives", "embedded",
            "flamingo", "devtools"} <= set(groups)
    for name, group in groups.items():
        for path in group["paths"]:  # as laid out in the copy: afcot_core/ at the root, plugins beside it
            where = ROOT / path if path.startswith("afcot_core/") else ROOT / "plugins" / path
            assert where.exists(), f"[tool.afcot.mutants.{name}] {path}"
        for test in group["tests"]:
            assert (ROOT / test).is_file(), f"[tool.afcot.mutants.{name}] {test}"
    for package in (ROOT / "plugins").glob("afcot_*/__init__.py"):
        covered = {p.split("/")[0] for g in groups.values() for p in g["paths"]}
        assert package.parent.name in covered | {"afcot_recipes"}, f"no mutation group for {package.parent.name}"


def test_every_core_module_is_in_a_group():
    named = {p for g in _mutants_script().groups(tomllib.loads((ROOT / "pyproject.toml").read_text())).values()
             for p in g["paths"]}
    modules = {str(m.relative_to(ROOT)) for m in (ROOT / "afcot_core").rglob("*.py")} - {"afcot_core/__init__.py"}
    assert modules - named == set(), "core modules in no [tool.afcot.mutants.*] group"


def test_a_group_becomes_the_copys_mutmut_table():
    script = _mutants_script()
    table = tomllib.loads(script.mutmut_table({"timeout_constant": 15.0},
                                              {"paths": ["afcot_core/shards.py", "afcot_paper/"],
                                               "tests": ["tests/test_store.py"]}))["tool"]["mutmut"]
    assert table == {"timeout_constant": 15.0, "only_mutate": ["*afcot_core/shards.py", "*afcot_paper/*"],
                     "source_paths": ["afcot_core/", "afcot_paper/"],
                     "pytest_add_cli_args_test_selection": ["tests/test_store.py"]}
