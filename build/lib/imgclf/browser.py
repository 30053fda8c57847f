"""The rendered reports as a reader's browser shows them: headless Chromium.

``./run_all.sh check`` (``python -m imgclf.browser [--reports DIR] [--docs]``) opens every report
page under ``reports/html/`` and ``reports/index.html`` in headless Chromium and, from the DOM the
browser built, checks that

* every figure the run saved is on the page (``<img>`` count == figures in the run's results),
* no line of library logging or progress output is visible (:func:`imgclf.render.is_noise`),
* every link and image of the index resolves to a file;

and writes a screenshot of each page to ``reports/screenshots/`` (``--docs``: the index also to
``docs/index.png``, the picture the README shows). Exits non-zero on any failure.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
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


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 2400, chromium: str | None = None) -> Path:
    """A ``width`` x ``height`` screenshot of the top of ``page``."""
    png.parent.mkdir(parents=True, exist_ok=True)
    _chromium([f"--screenshot={png.resolve()}", f"--window-size={width},{height}"], page, chromium)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot of {page}")
    return png


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


def expected_figures(name: str, reports: Path) -> tuple[int | None, str]:
    """How many figures the page of ``name`` must show, and from where: the figures listed in
    ``results.json`` when the latest run ended ok; after a failed run, the figure outputs of the
    executed notebook (what the run displayed before it stopped). ``(None, why)`` when unknown."""
    latest = max((json.loads(f.read_text()) for f in (reports / "status").glob(f"{name}-*.json")),
                 key=lambda r: r.get("finished", ""), default=None)
    res = reports / name / "results.json"
    if latest is not None and latest.get("status") == "ok" and res.exists():
        return len(json.loads(res.read_text()).get("figures", [])), "results.json"
    executed = reports / "executed" / f"{name}.ipynb"
    if executed.exists():
        nb = json.loads(executed.read_text())
        n = sum(1 for c in nb.get("cells", []) for o in c.get("outputs", [])
                if "figure" in (o.get("metadata", {}).get("imgclf") or {}))
        return n, "executed notebook (failed run)"
    return None, "no status record"


def check_report(page: Path, name: str, reports: Path, chromium: str | None = None) -> dict:
    """Open a report page; compare its images with the figures the run saved."""
    facts = page_facts(dump_dom(page, chromium))
    want, source = expected_figures(name, reports)
    facts.update(page=str(page), expected=want, expected_from=source)
    facts["problems"] = []
    if want is not None and facts["images"] != want:
        facts["problems"].append(f"{facts['images']} images on the page, {want} figures saved")
    if facts["log_lines"]:
        facts["problems"].append(f"{len(facts['log_lines'])} log lines visible, e.g. {facts['log_lines'][0][:120]!r}")
    return facts


def check_index(page: Path, chromium: str | None = None) -> dict:
    facts = page_facts(dump_dom(page, chromium))
    facts.update(page=str(page), broken=broken_links(facts["links"], page.parent))
    facts["problems"] = [f"{len(facts['broken'])} broken links, e.g. {facts['broken'][0]}"] if facts["broken"] else []
    if facts["log_lines"]:
        facts["problems"].append(f"{len(facts['log_lines'])} log lines visible")
    return facts


def check_all(reports: Path = REPORTS, docs: Path | None = None, screenshots: bool = True) -> list[dict]:
    """Check every page of ``reports``; screenshots to ``reports/screenshots/``."""
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found: apt-get install chromium (Debian) to run the browser check")
    shots = reports / "screenshots"
    rows = []
    for page in sorted((reports / "html").glob("*.html")):
        full = page.name.endswith(".full.html")
        name = page.name.removesuffix(".full.html").removesuffix(".html")
        facts = check_report(page, name, reports, chromium)
        facts["view"] = "full" if full else "report"
        if screenshots:
            facts["screenshot"] = str(screenshot(page, shots / f"{page.stem}.png", chromium=chromium))
        rows.append(facts)
    index = reports / "index.html"
    if index.exists():
        facts = check_index(index, chromium)
        facts["view"] = "index"
        if screenshots:
            facts["screenshot"] = str(screenshot(index, shots / "index.png", height=1800, chromium=chromium))
        if docs is not None:
            screenshot(index, docs / "index.png", width=1280, height=1100, chromium=chromium)
        rows.append(facts)
    else:
        rows.append({"page": str(index), "view": "index", "problems": ["no index.html"]})
    return rows


def main(argv: list[str]) -> int:
    from .index import reports_option

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
              f"{'ok' if ok else 'FAIL: ' + '; '.join(r['problems'])}")
    print(f"screenshots: {reports / 'screenshots'}" + (f"; README picture: {docs / 'index.png'}" if docs else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
