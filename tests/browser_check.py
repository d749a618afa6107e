"""Open a run report in headless Chromium: screenshot, DOM checks, and proof that it fetches nothing remote.

    python tests/browser_check.py RUN/report.html --screenshot report.png [--literal TEXT ...] [--no-plot]

Chromium records its network log; every request the page itself starts (Chromium's own background calls carry
no initiator) must be for an inline ``data:`` or local ``file:`` URL. Host names resolve nowhere, so nothing leaves
the machine either way. The DOM Chromium built is checked for the yields table, a sample with its audio, and a
plot (``--no-plot``: a run without one), and that it holds no element or attribute the report does not write (no
script, no ``on...`` handler: text from records, teachers and benchmark files is escaped), every ``--literal`` text
shown as text. Exit 0 when all holds, 1 otherwise. Used by ``nox -s report_browser`` and
tests/test_page_escaping.py.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from htmltree import injected, parse, remote_references, rows

QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
         "--hide-scrollbars", "--mute-audio", "--host-resolver-rules=MAP * ~NOTFOUND"]
#: the elements and attributes the report page writes itself
OWN_TAGS = {"#document", "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "h4", "h5", "h6", "p",
            "code", "details", "summary", "pre", "table", "thead", "tbody", "tr", "th", "td", "section", "span",
            "audio", "dl", "dt", "dd", "div", "ol", "li", "b", "svg", "line", "text", "polyline", "circle", "figure",
            "img", "figcaption"}
OWN_ATTRS = {"lang", "charset", "id", "class", "data-id", "data-name", "controls", "preload", "src", "open", "alt",
             "width", "height", "viewbox", "role", "aria-label", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r",
             "fill", "stroke", "stroke-width", "points", "text-anchor", "font-size"}


def page_requests(netlog: Path) -> list[str]:
    """URLs of the requests a page started (not Chromium's own), from a ``--log-net-log`` file."""
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    found = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] == start and "url" in params and params.get("initiator") != "not an origin":
            found.append(params["url"])
    return found


def chromium(args: list[str], profile: str, netlog: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        sys.exit("chromium not found: apt-get install -y chromium")
    return subprocess.run([binary, *QUIET, f"--user-data-dir={profile}", f"--log-net-log={netlog}", *args],
                          capture_output=True, text=True, timeout=120)


def check(page: Path, screenshot: Path, literals: tuple[str, ...] = (), plot: bool = True) -> list[str]:
    """The problems found (empty when the page passes)."""
    problems = [f"remote reference in the HTML: {r}" for r in remote_references(page.read_text(encoding="utf-8"))]
    url = page.resolve().as_uri()
    with tempfile.TemporaryDirectory() as work:
        dumped = chromium(["--virtual-time-budget=3000", "--dump-dom", url], f"{work}/profile", Path(work, "a.json"))
        shot = chromium([f"--screenshot={screenshot.resolve()}", "--window-size=1280,2400", url], f"{work}/profile",
                        Path(work, "b.json"))
        requests = [u for name in ("a.json", "b.json") for u in page_requests(Path(work, name))]
    remote = [u for u in requests if not u.startswith(("data:", "file:"))]
    if dumped.returncode or not dumped.stdout.strip():
        return [*problems, f"chromium --dump-dom failed ({dumped.returncode}): {dumped.stderr[-500:]}"]
    dom = parse(dumped.stdout)
    yields = dom.find_all("table", id="yields")
    if not yields or len(rows(yields[0])) < 2:
        problems.append("no yields table with rows in the DOM")
    samples = [s for s in dom.find_all("section", class_="sample") if s.find_all("audio")]
    if not samples or not samples[0].find_all("audio")[0].attrs.get("src", "").startswith("data:audio/"):
        problems.append("no sample with an inline audio player in the DOM")
    plots = dom.find_all("img", class_="plot") + dom.find_all("svg", class_="plot")
    if plot and not plots:
        problems.append("no plot in the DOM")
    problems += [f"injected {what}" for what in injected(dom, OWN_TAGS, OWN_ATTRS)]
    text = dom.text()
    problems += [f"not shown literally: {t!r}" for t in literals if " ".join(t.split()) not in text]
    if shot.returncode or not screenshot.is_file() or screenshot.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        problems.append(f"no screenshot ({shot.returncode}): {shot.stderr[-500:]}")
    problems += [f"the page requested a remote resource: {u}" for u in remote]
    print(f"DOM: yields rows {len(rows(yields[0])) - 1 if yields else 0}, samples with audio {len(samples)}, "
          f"plots {len(plots)}; page requests {len(requests)}, remote {len(remote)}; screenshot {screenshot}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--screenshot", type=Path, default=Path("report.png"))
    parser.add_argument("--literal", action="append", default=[], help="text the page must show as text")
    parser.add_argument("--no-plot", action="store_true", help="the run has no plot to look for")
    args = parser.parse_args()
    problems = check(args.page, args.screenshot, tuple(args.literal), plot=not args.no_plot)
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
