"""``afcot plugins new NAME``: a third-party plugin package to start from.

The package has a pyproject with the ``afcot`` entry point, one component of the chosen role with its
config type, a test that loads it through the plugin manager, and a README. The templates are package
data under ``afcot_devtools/plugin_template``.
"""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path

from afcot_core.api import HOOK_OF_ROLE, BadInput

#: roles a new plugin can start from, with their hook and how a recipe names the component
ROLES = ("validator", "teacher_llm", "teacher_alm")
_WORDS = {"validator": "validator", "teacher_llm": "text teacher", "teacher_alm": "audio teacher"}
_TABLE = {"validator": "[[generate.validators]]", "teacher_llm": "[generate.llm]", "teacher_alm": "[generate.alm]"}
_DESCRIPTION = {"validator": "rejects a CoT whose caption is too short",
                "teacher_llm": "a text teacher to build on",
                "teacher_alm": "an audio teacher to build on"}
_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


def _template(name: str) -> str:
    return importlib.resources.files("afcot_devtools").joinpath("plugin_template", name).read_text(encoding="utf-8")


def files(name: str, role: str) -> dict[str, str]:
    """The files of the package for plugin ``name`` (relative path → text)."""
    if not _NAME.fullmatch(name):
        raise BadInput(f"plugin name '{name}': use lower-case letters, digits and single hyphens, e.g. my-checks")
    if role not in ROLES:
        raise BadInput(f"--role {role}: choose one of {', '.join(ROLES)}")
    package = "afcot_" + name.replace("-", "_")
    values = {"name": name, "entry": name, "dist": f"afcot-{name}", "package": package, "role": role,
              "role_words": _WORDS[role], "hook": HOOK_OF_ROLE[role], "table": _TABLE[role],
              "description": _DESCRIPTION[role], "cls": "".join(part.title() for part in name.split("-"))}

    def fill(template: str) -> str:
        text = _template(template)
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        return text

    return {"pyproject.toml": fill("pyproject.toml.tmpl"), "README.md": fill("README.md.tmpl"),
            f"{package}/__init__.py": fill("__init__.py.tmpl"), f"{package}/plugin.py": fill("plugin.py.tmpl"),
            f"{package}/component.py": fill(f"roles/{role}.py.tmpl"),
            f"tests/test_{package}.py": fill(f"roles/test_{role}.py.tmpl")}


def create(name: str, role: str, parent: Path) -> Path:
    """Write the package for plugin ``name`` into ``parent/afcot-NAME``; refuses to overwrite anything."""
    content = files(name, role)
    if not parent.is_dir():
        raise BadInput(f"{parent}: no such folder")
    target = parent / f"afcot-{name}"
    if target.exists():
        raise BadInput(f"{target}: already exists; choose another name or folder")
    for relative, text in content.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
