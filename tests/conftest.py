"""Shared fixtures. Tests never reach a hub: HF_HUB_OFFLINE is set for the whole session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "recipes" / "quickstart.toml"


@pytest.fixture(scope="session")
def af3_folder(tmp_path_factory):
    """A tiny random-weight AF3 checkpoint folder (read only)."""
    pytest.importorskip("transformers")
    from afcot_flamingo.tiny import save_af3

    return save_af3(tmp_path_factory.mktemp("af3") / "af3")


@pytest.fixture(scope="session")
def af2_folder(tmp_path_factory):
    """A tiny random-weight AF2 folder in our format (read only)."""
    pytest.importorskip("torchaudio")
    from afcot_flamingo.af2.tiny import save_tiny_af2

    return save_tiny_af2(tmp_path_factory.mktemp("af2") / "af2")


@pytest.fixture(scope="session")
def plugins():
    from afcot_core import plugins as loader

    return loader.load()


def parse_cli(plugins, *args: str):
    """``afcot ARGS`` parsed by the real parser with ``plugins``' commands, not run: the options' namespace."""
    from afcot_core import cli

    return cli.build_parser(plugins).parse_args(list(args))


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``afcot ARGS`` in this process: its exit code, standard output and standard error."""
    from afcot_core import cli

    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def afcot(*args: str, env: dict | None = None, cwd: Path | None = None,
          timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess."""
    return subprocess.run([sys.executable, "-m", "afcot_core.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)


class GonePipe:
    """stderr once its reader has left (``afcot ... 2>&1 | head``): every write and flush breaks."""

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")
