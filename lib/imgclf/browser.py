"""The rendered reports as a reader's browser shows them: headless Chromium.

``./run_all.sh check`` (``python -m imgclf.browser [--reports DIR] [--docs]``) opens every report
page under ``reports/html/`` and ``reports/index.html`` in headless Chromium and, from the DOM the
browser built, checks that

* every figure the run saved is on the page (``<img>`` count == figures in the run's results),
* no line of library logging or progress output is visible (:func:`imgclf.render.is_noise`),
* every link and image of the index resolves to a file;
* no page scrolls sideways at laptop width (1366 px) nor at phone width (375 px) (the full
  view with code: laptop only), no table is clipped (wider than the box that holds it: at both
  widths in the index, at laptop width in the reports) nor cut by pandas ("N rows × M columns");

and writes a screenshot of each page to ``reports/screenshots/`` (``--docs``: the index also to
``docs/index.png``, the picture the README shows). Exits non-zero on any failure.

Widths are measured in the browser: a copy of the page, with a short script added that records
the page's and each table's widths once it has loaded, is opened at each width and its DOM read
back (``--dump-dom``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .config import REPO_ROOT
from .render import is_noise

# Broader than imgclf.render's filter on purpose: a second, independent opinion on what a log line
# looks like, so a filter pattern that stops matching cannot hide its own failure.
LOG_LINE = re.compile(r"^\s*[IWEF]\d{4} \d|NodeDef mentions|oneDNN|cuInit|absl::|tensorflow/core/|site-packages/"
                      r"|\|\s*\d+/\d+ \[|^\s*Epoch \d+/\d+|\bgen\s+\d+/\d+\b")


def log_lines(text: str) -> list[str]:
    """The lines of a page's visible text that look like library logging or progress output."""
    return [l for l in text.splitlines() if l.strip() and (LOG_LINE.search(l) or is_noise(l))]

REPORTS = REPO_ROOT / "reports"
LAPTOP, PHONE = 1366, 375
"""The widths a page must fit without scrolling sideways (px)."""
PAGE = re.compile(r"^(?P<name>[^.]+)(?:\.(?P<profile>[^.]+))?(?P<full>\.full)?\.html$")
_CUT = re.compile(r"\b\d+ rows × \d+ columns\b")

MEASURE = """(() => {
  const d = document.documentElement, vw = d.clientWidth, r = {viewport: vw, page: d.scrollWidth, clipped: [], wide: []};
  const label = t => { const c = t.querySelector('caption'), h = t.querySelector('th, td');
    return ((c && c.textContent) || (h && h.textContent) || 'table').trim().slice(0, 60); };
  document.querySelectorAll('table').forEach(t => {
    const box = t.getBoundingClientRect();
    if (box.width === 0) return;
    if (box.right > vw + 1) r.wide.push(label(t));
    for (let p = t.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== 'visible' && p.scrollWidth > p.clientWidth + 1) {
        r.clipped.push(label(t) + ' (' + t.scrollWidth + ' px in ' + p.clientWidth + ' px)'); break; }
    }
  });
  return JSON.stringify(r);
})()"""
DOCS = REPO_ROOT / "docs"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio"]


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable on PATH, or None."""
    for c in CANDIDATES:
        path = shutil.which(c)
        if path:
            return path
    return None


def _chromium(args: list[str], page: Path, chromium: str | None = None, timeout: float = 120) -> str:
    exe = chromium or find_chromium()
    if exe is None:
        raise FileNotFoundError("no Chromium found (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="imgclf-chromium-") as profile:
        cmd = [exe, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args, page.resolve().as_uri()]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"chromium failed ({out.returncode}) on {page}: {out.stderr[-2000:]}")
    return out.stdout


def dump_dom(page: Path, chromium: str | None = None) -> str:
    """The DOM of ``page`` after Chromium loaded it (``--dump-dom``)."""
    return _chromium(["--dump-dom"], page, chromium)


def screenshot(page: Path, png: Path, width: int = LAPTOP, height: int = 2400, chromium: str | None = None) -> Path:
    """A ``width`` x ``height`` screenshot of the top of ``page``."""
    png.parent.mkdir(parents=True, exist_ok=True)
    _chromium([f"--screenshot={png.resolve()}", f"--window-size={width},{height}"], page, chromium)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot of {page}")
    return png


class DevTools:
    """One headless Chromium driven over the DevTools protocol (``websocket-client``): the only
    way to get a viewport narrower than 500 px (``--window-size`` stops there) and to read back
    what a script measured on the page."""

    def __init__(self, chromium: str | None = None, timeout: float = 120):
        import websocket

        exe = chromium or find_chromium()
        if exe is None:
            raise FileNotFoundError("no Chromium found (apt-get install chromium)")
        self._profile = tempfile.TemporaryDirectory(prefix="imgclf-chromium-", ignore_cleanup_errors=True)
        self._proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={self._profile.name}", "--remote-debugging-port=0",
                                       "--remote-allow-origins=*", "about:blank"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)  # its own process group: closed whole
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self._proc.poll() is not None:
                self.close()
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        from urllib.request import urlopen

        targets = json.loads(urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30).read())
        url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
        self._ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
        self._id = 0
        self.call("Page.enable")

    def call(self, method: str, wait_event: str | None = None, **params) -> dict:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        result, seen = None, wait_event is None
        while result is None or not seen:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result = msg.get("result", {})
            elif wait_event and msg.get("method") == wait_event:
                seen = True
        return result

    def open(self, page: Path, width: int, height: int = 900) -> None:
        """Load ``page`` in a ``width`` x ``height`` CSS-pixel viewport."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", wait_event="Page.loadEventFired", url=page.resolve().as_uri())

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def screenshot(self, png: Path) -> Path:
        import base64

        data = self.call("Page.captureScreenshot", format="png")["data"]
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(base64.b64decode(data))
        return png

    def close(self) -> None:
        try:
            self._ws.close()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self._proc.pid, sig)  # the browser this object started, with its helpers
                self._proc.wait(20)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        self._profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def measure(page: Path, width: int, chromium: str | None = None, shot: Path | None = None) -> dict:
    """Widths of ``page`` in a ``width`` px wide viewport: ``viewport``, ``page`` (the document's
    scroll width: wider than the viewport means sideways scrolling), ``wide`` (tables that reach
    past the viewport) and ``clipped`` (tables wider than the scrolling box that holds them).
    ``shot``: also a screenshot of the top of the page at that width."""
    with DevTools(chromium) as dt:
        dt.open(page, width)
        result = json.loads(dt.evaluate(MEASURE))
        if shot is not None:
            dt.screenshot(shot)
    return result


def width_problems(page: Path, widths: tuple[int, ...], chromium: str | None = None,
                   shots: Path | None = None, clipped_at: tuple[int, ...] | None = None) -> list[str]:
    """Sideways scrolling of ``page`` at each of ``widths`` and clipped tables at each of
    ``clipped_at`` (default: the same widths), in one browser; ``shots``: a folder for a
    screenshot at each width (``<page>.<width>.png``)."""
    clipped_at = widths if clipped_at is None else clipped_at
    problems = []
    if not widths:
        return problems
    with DevTools(chromium) as dt:
        for w in widths:
            dt.open(page, w)
            m = json.loads(dt.evaluate(MEASURE))
            if shots is not None:
                dt.screenshot(shots / f"{page.stem}.{w}.png")
            if m["page"] > m["viewport"] + 1:
                problems.append(f"scrolls sideways at {w} px ({m['page']} px wide)")
            if m["clipped"] and w in clipped_at:
                problems.append(f"{len(m['clipped'])} clipped tables at {w} px, e.g. {m['clipped'][0]!r}")
    return problems


def visible_text(dom: str) -> str:
    """The text a reader sees: the page without scripts, styles and folded ``<details>`` bodies."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(dom, "html.parser")
    for tag in soup(["script", "style", "head", "template", "noscript"]):
        tag.decompose()
    for det in soup.find_all("details"):
        if det.has_attr("open"):
            continue
        for child in list(det.children):
            if getattr(child, "name", None) != "summary":
                child.extract()
    return soup.get_text("\n")


def page_facts(dom: str) -> dict:
    """What a check needs from one page's DOM."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(dom, "html.parser")
    return {
        "images": len(soup.find_all("img")),
        "figure_outputs": len(soup.select(".jp-RenderedImage img")),
        "stderr_blocks": len(soup.select('[data-mime-type="application/vnd.jupyter.stderr"]')),
        "log_lines": log_lines(visible_text(dom)),
        "cut_tables": _CUT.findall(visible_text(dom)),
        "links": [a.get("href") for a in soup.find_all("a") if a.get("href")]
                 + [i.get("src") for i in soup.find_all("img") if i.get("src")],
    }


def broken_links(links: list[str], base: Path) -> list[str]:
    """The relative links among ``links`` that name no file under ``base``."""
    bad = []
    for link in links:
        parts = urlsplit(link)
        if parts.scheme or parts.netloc or not parts.path:  # external, data:, or an anchor
            continue
        if not (base / unquote(parts.path)).exists():
            bad.append(link)
    return bad


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def expected_figures(name: str, profile: str, reports: Path) -> tuple[int | None, str]:
    """How many figures the page of ``name`` at ``profile`` must show, and from where: the
    figures listed in the results of that profile's last complete run when its latest run ended
    ok; after a failed run, the figure outputs of the executed notebook (what the run displayed
    before it stopped). ``(None, why)`` when unknown."""
    latest = _json(reports / "status" / f"{name}-{profile}.json")
    res = reports / name / f"last-{profile}" / "results.json"
    if latest.get("status") == "ok" and res.exists():
        figures = _json(res).get("figures")
        return len(figures) if isinstance(figures, list) else 0, "results.json"
    executed = reports / "executed" / f"{name}.{profile}.ipynb"
    if executed.exists():
        nb = _json(executed)
        n = sum(1 for c in nb.get("cells", []) for o in c.get("outputs", [])
                if "figure" in (o.get("metadata", {}).get("imgclf") or {}))
        return n, "executed notebook (failed run)"
    return None, "no status record"


def check_report(page: Path, name: str, profile: str, reports: Path, chromium: str | None = None,
                 widths: tuple[int, ...] = (), shots: Path | None = None) -> dict:
    """Open a report page; compare its images with the figures the run saved; no log line
    visible, no table cut by pandas, none clipped and no sideways scrolling at ``widths``."""
    facts = page_facts(dump_dom(page, chromium))
    want, source = expected_figures(name, profile, reports)
    facts.update(page=str(page), expected=want, expected_from=source)
    facts["problems"] = []
    if want is not None and facts["images"] != want:
        facts["problems"].append(f"{facts['images']} images on the page, {want} figures saved")
    if facts["log_lines"]:
        facts["problems"].append(f"{len(facts['log_lines'])} log lines visible, e.g. {facts['log_lines'][0][:120]!r}")
    if facts["cut_tables"]:
        facts["problems"].append(f"pandas cut {len(facts['cut_tables'])} tables, e.g. {facts['cut_tables'][0]!r}")
    # on a phone a table may scroll inside its own box; at laptop width none may
    facts["problems"] += width_problems(page, widths, chromium, shots, clipped_at=(LAPTOP,))
    return facts


def check_index(page: Path, chromium: str | None = None, widths: tuple[int, ...] = (LAPTOP, PHONE),
                shots: Path | None = None) -> dict:
    """Open the index: every link resolves inside its folder, no log line, and no sideways
    scrolling nor clipped table at ``widths``."""
    facts = page_facts(dump_dom(page, chromium))
    facts.update(page=str(page), broken=broken_links(facts["links"], page.parent))
    facts["problems"] = [f"{len(facts['broken'])} broken links, e.g. {facts['broken'][0]}"] if facts["broken"] else []
    if facts["log_lines"]:
        facts["problems"].append(f"{len(facts['log_lines'])} log lines visible")
    facts["problems"] += width_problems(page, widths, chromium, shots)
    return facts


def check_all(reports: Path = REPORTS, docs: Path | None = None, screenshots: bool = True) -> list[dict]:
    """Check every page of ``reports``; screenshots to ``reports/screenshots/``."""
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found: apt-get install chromium (Debian) to run the browser check")
    shots = reports / "screenshots"
    rows = []
    for page in sorted((reports / "html").glob("*.html")):
        m = PAGE.match(page.name)
        if m is None or m["profile"] is None:  # a page of the layout before one page per profile
            rows.append({"page": str(page), "view": "?", "problems": [], "skipped": "not <notebook>.<profile>.html"})
            continue
        full = bool(m["full"])
        # the report view must fit a laptop and a phone; the full view's code may scroll in its boxes
        facts = check_report(page, m["name"], m["profile"], reports, chromium,
                             widths=(LAPTOP,) if full else (LAPTOP, PHONE), shots=shots if screenshots else None)
        facts["view"] = "full" if full else "report"
        if screenshots:
            facts["screenshot"] = str(screenshot(page, shots / f"{page.stem}.png", chromium=chromium))
        rows.append(facts)
    index = reports / "index.html"
    if index.exists():
        facts = check_index(index, chromium, shots=shots if screenshots else None)
        facts["view"] = "index"
        if screenshots:
            facts["screenshot"] = str(screenshot(index, shots / "index.png", height=1800, chromium=chromium))
        if docs is not None:
            screenshot(index, docs / "index.png", width=LAPTOP, height=1100, chromium=chromium)
        rows.append(facts)
    else:
        rows.append({"page": str(index), "view": "index", "problems": ["no index.html"]})
    return rows


def main(argv: list[str]) -> int:
    from .reports.cli import reports_option

    reports, argv = reports_option(argv, REPORTS)
    docs = DOCS if "--docs" in argv else None
    try:
        rows = check_all(reports, docs)
    except FileNotFoundError as e:
        print(f"check: {e}", file=sys.stderr)
        return 2
    print(f"{'page':<44} {'figures saved':>13} {'images shown':>12} {'log lines':>9} {'stderr boxes':>12}  result")
    bad = 0
    for r in rows:
        ok = not r["problems"]
        bad += not ok
        print(f"{Path(r['page']).name:<44} {str(r.get('expected', '-')):>13} {r.get('images', '-'):>12} "
              f"{len(r.get('log_lines', [])):>9} {r.get('stderr_blocks', '-'):>12}  "
              f"{r['skipped'] if r.get('skipped') else 'ok' if ok else 'FAIL: ' + '; '.join(r['problems'])}")
    print(f"screenshots: {reports / 'screenshots'}" + (f"; README picture: {docs / 'index.png'}" if docs else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
