"""Drive an audit page (``afcot audit RUN``) in headless Chromium: label samples with real mouse clicks, save the
labels through the page's button, load the saved file back into a fresh page, and check the DOM.

    python tests/audit_browser_check.py RUN/audit.html [--literal TEXT ...] [--labels-out FILE]

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: no port, no extra package).
Checked: one entry per sampled id, each with an inline ``data:audio/`` player and its two choices; clicks on
"follows" / "does not follow" make the labels the page saves (a download, read back from disk); that file, given to
the "load labels" input of a reloaded page, checks the same radios again; every ``--literal`` text shows as text and
the page holds no element or attribute it did not write (no injected script or handler); nothing remote is asked
for. Exit 0 when all holds, 1 otherwise, 77 when chromium is absent.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from htmltree import injected, parse, remote_references

QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
         "--hide-scrollbars", "--mute-audio", "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1200,900"]
#: the elements and attributes the audit page writes itself
OWN_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "code", "div", "button", "label",
            "input", "span", "section", "audio", "dl", "dt", "dd", "fieldset", "legend", "script", "#document"}
OWN_ATTRS = {"lang", "charset", "id", "type", "accept", "class", "role", "data-index", "data-id", "controls",
             "preload", "src", "name", "value"}


class Browser:
    """Headless Chromium spoken to over ``--remote-debugging-pipe`` (JSON messages ended by NUL on fds 3 and 4)."""

    def __init__(self, binary: str, profile: str) -> None:
        import fcntl

        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        for name in ("to_chrome_r", "from_chrome_w"):  # above 4, so that moving one cannot close the other
            fd = locals()[name]
            high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
            os.close(fd)
            if name == "to_chrome_r":
                to_chrome_r = high
            else:
                from_chrome_w = high

        # the child's fd 3 reads our commands, its fd 4 writes its replies (moved there by a small exec shim)
        shim = "import os,sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); os.execv(sys.argv[3], " \
               "sys.argv[3:])"
        self.proc = subprocess.Popen([sys.executable, "-c", shim, str(to_chrome_r), str(from_chrome_w), binary,
                                      *QUIET, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
                                     pass_fds=(to_chrome_r, from_chrome_w), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next = 0
        self.events: list[dict] = []

    def _read(self, timeout: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_chrome], [], [], timeout)
            if not ready:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed its pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def close(self) -> None:
        with contextlib.suppress(TimeoutError, EOFError, RuntimeError, OSError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


class Page:
    def __init__(self, browser: Browser, url: str) -> None:
        self.b = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "DOM", "Network"):
            self.send(f"{domain}.enable")
        self.open(url)

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.b.send(method, params, self.session)

    def open(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        deadline = time.time() + 30
        while self.eval("document.readyState") != "complete" or not self.eval("!!window.afcotAudit"):
            if time.time() > deadline:
                raise TimeoutError(f"{url} did not load")
            time.sleep(0.1)

    def eval(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) at the middle of the element ``selector`` picks."""
        box = self.eval(f"(function(){{var e=document.querySelector({json.dumps(selector)});"
                        "e.scrollIntoView({block:'center'});var r=e.getBoundingClientRect();"
                        "return [r.left+r.width/2, r.top+r.height/2];})()")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left",
                                                   "clickCount": 1})

    def checked(self) -> dict[str, str]:
        return self.eval("window.afcotAudit.labels()")


def _injected(dom) -> list[str]:
    found = injected(dom, OWN_TAGS, OWN_ATTRS)
    scripts = dom.find_all("script")
    if len(scripts) != 2 or [s.attrs.get("type") for s in scripts] != ["application/json", None]:
        found.append(f"{len(scripts)} script elements (the page writes 2)")
    return found


def check(page: Path, literals: list[str], labels_out: Path | None = None) -> list[str]:
    """The problems found (empty when the page passes)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        sys.exit(77)
    html = page.read_text(encoding="utf-8")
    problems = [f"remote reference in the HTML: {r}" for r in remote_references(html)]
    ids = json.loads(parse(html).find_all("script", id="audit-meta")[0].text())["ids"]
    with tempfile.TemporaryDirectory() as work:
        browser = Browser(binary, f"{work}/profile")
        try:
            downloads = Path(work, "downloads")
            downloads.mkdir()
            browser.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
            tab = Page(browser, page.resolve().as_uri())
            dom = parse(tab.eval("document.documentElement.outerHTML"))
            entries = dom.find_all("section", class_="audit-sample")
            if [e.attrs.get("data-id") for e in entries] != ids:
                problems.append(f"{len(entries)} entries in the DOM for {len(ids)} sampled ids (or out of order)")
            for entry in entries:
                audio = entry.find_all("audio")
                if not audio or not audio[0].attrs.get("src", "").startswith("data:audio/"):
                    problems.append(f"entry {entry.attrs.get('data-id')}: no inline audio player")
                if sorted(i.attrs.get("value") for i in entry.find_all("input", type="radio")) != \
                        ["does-not-follow", "follows"]:
                    problems.append(f"entry {entry.attrs.get('data-id')}: not the two choices")
            text = dom.text()
            problems += [f"not shown literally: {t!r}" for t in literals if " ".join(t.split()) not in text]
            problems += [f"injected {what}" for what in _injected(dom)]
            if tab.eval("window.__xss === undefined") is not True:
                problems.append("an injected script ran")
            # label by clicking: even entries follow, odd ones do not (the last one stays unlabelled)
            wanted = {ids[i]: ("follows" if i % 2 == 0 else "does-not-follow") for i in range(max(len(ids) - 1, 1))}
            for i, item_id in enumerate(ids):
                if item_id in wanted:
                    tab.click(f'input[name="label-{i}"][value="{wanted[item_id]}"]')
            if tab.checked() != wanted:
                problems.append(f"the clicks did not label the samples: {tab.checked()} != {wanted}")
            progress = tab.eval("document.getElementById('progress').textContent")
            if progress != f"{len(wanted)} of {len(ids)} labelled":
                problems.append(f"progress reads {progress!r}")
            tab.click("#save")
            deadline = time.time() + 20
            while not [p for p in downloads.glob("*.json")] and time.time() < deadline:
                time.sleep(0.1)
            saved = sorted(downloads.glob("*.json"))
            if not saved:
                return [*problems, "the save button downloaded nothing"]
            time.sleep(0.3)
            doc = json.loads(saved[0].read_text(encoding="utf-8"))
            if doc.get("labels") != wanted or doc.get("sample") != ids:
                problems.append(f"the saved file holds other labels: {doc.get('labels')}")
            if labels_out is not None:
                shutil.copyfile(saved[0], labels_out)
            # a fresh page knows nothing; the saved file loads back into it
            tab.open(page.resolve().as_uri())
            if tab.checked():
                problems.append("a reloaded page starts with labels")
            node = tab.send("DOM.querySelector", {"nodeId": tab.send("DOM.getDocument")["root"]["nodeId"],
                                                  "selector": "#load"})["nodeId"]
            tab.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(saved[0])]})
            deadline = time.time() + 10
            while tab.checked() != wanted and time.time() < deadline:
                time.sleep(0.1)
            if tab.checked() != wanted:
                problems.append(f"the loaded file did not restore the labels: {tab.checked()}")
            status = tab.eval("document.getElementById('status').textContent")
            if not status.startswith(f"loaded {len(wanted)} labels"):
                problems.append(f"status after loading reads {status!r}")
            requests = [e["params"]["request"]["url"] for e in browser.events
                        if e.get("method") == "Network.requestWillBeSent"]
            problems += [f"the page requested a remote resource: {u}" for u in requests
                         if not u.startswith(("data:", "file:", "blob:", "about:"))]
            print(f"DOM: entries {len(entries)}, labels clicked {len(wanted)}, saved {saved[0].name}, reloaded and "
                  f"restored {len(tab.checked())}; page requests {len(requests)}")
        finally:
            browser.close()
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--literal", action="append", default=[], help="text the page must show as text")
    parser.add_argument("--labels-out", type=Path, help="keep the labels file the page saved here")
    args = parser.parse_args()
    problems = check(args.page, args.literal, args.labels_out)
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
