"""The shape of the code: plugins see the core through afcot_core.api only, the core has no import circle and
stays small."""

import ast
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

CORE = ROOT / "afcot_core"
#: the core's line budget: in total, and for any one module
TOTAL_LINES, MODULE_LINES = 4000, 300


def _imports(tree: ast.AST) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every import, at any depth (lazy ones inside functions included), except
    those under ``if TYPE_CHECKING:``, which are never executed."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
    return found


def core_imports_of_plugins(root: Path) -> list[str]:
    """``path:line module`` of every import of a core module other than ``afcot_core.api`` under ``root``."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        for line, module, names in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if module == "afcot_core":
                bad += [f"{path.relative_to(root)}:{line} afcot_core.{n}" for n in names
                        if n not in ("HOOK_API", "__version__")]
            elif module.startswith("afcot_core.") and module != "afcot_core.api":
                bad.append(f"{path.relative_to(root)}:{line} {module}")
    return bad


def test_built_in_plugins_and_the_example_import_only_the_public_face():
    bad = core_imports_of_plugins(ROOT / "plugins") + core_imports_of_plugins(ROOT / "examples")
    assert bad == [], "import these through afcot_core.api:\n" + "\n".join(bad)


def test_the_plugin_templates_import_only_the_public_face():
    templates = sorted((ROOT / "plugins" / "afcot_devtools" / "plugin_template").rglob("*.py.tmpl"))
    assert templates
    for path in templates:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.lstrip().startswith(("from afcot_core", "import afcot_core")):
                assert line.lstrip().startswith("from afcot_core.api import"), f"{path.name}: {line}"


def test_a_plugin_importing_a_core_module_is_found(tmp_path):
    (tmp_path / "plugin.py").write_text("from afcot_core.api import hookimpl\n\ndef later():\n"
                                        "    from afcot_core.teacher import Teacher\n    from afcot_core import log\n")
    assert sorted(core_imports_of_plugins(tmp_path)) == ["plugin.py:4 afcot_core.teacher", "plugin.py:5 afcot_core.log"]


def core_graph() -> dict[str, set[str]]:
    """Each core module and the core modules it imports (a package counts as its ``__init__``)."""
    modules = {}
    for path in CORE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for _, module, names in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if module in modules:
                targets.add(module)
            targets |= {f"{module}.{n}" for n in names if f"{module}.{n}" in modules}
        graph[name] = targets - {name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``, each as the path that closes it."""
    found, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            found.append([*path[path.index(node):], node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return found


def test_the_core_has_no_import_circle():
    assert circles(core_graph()) == []


def test_the_circle_check_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    graph = core_graph()
    assert "afcot_core.stages" not in graph["afcot_core.recipe"]  # the recipe asks the plugins for its stages
    graph["afcot_core.records"] = {*graph["afcot_core.records"], "afcot_core.protocols"}
    assert circles(graph)


def test_the_core_stays_within_its_line_budget():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
             for p in [*CORE.glob("*.py"), *CORE.glob("*/*.py")]}
    assert sum(sizes.values()) < TOTAL_LINES, f"afcot_core has {sum(sizes.values())} lines"
    assert {p: n for p, n in sizes.items() if n > MODULE_LINES} == {}


def test_the_public_face_resolves_every_name_and_stays_cheap():
    probe = ("import sys, afcot_core.api as api; cheap = not {'numpy', 'torch', 'structlog'} & set(sys.modules); "
             "[getattr(api, n) for n in api.__all__]; print(cheap, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False"]
