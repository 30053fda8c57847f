"""``reports/index.html``: per notebook and profile (paper and smoke side by side) the numbers of
the last complete run, built from the template ``templates/index.html.j2``.

* the numbers come from ``reports/<notebook>/last-<profile>/results.json`` (see
  :mod:`imgclf.reports.status`), so a run in progress or a failed one never changes them; for the
  paper profile, when ``reports/`` has no paper run, the published one from ``results/``;
* the latest run's status: when it failed and the numbers come from an earlier run, a **stale**
  marker says so; a run whose results say ``partial`` (a time budget) is marked **partial**;
* provenance (profile, date, hardware, backend, commit), the headline paper vs ours with deltas
  coloured better/worse, the paired claims, thumbnails of the figures, the notes.

Everything shown is escaped by the template (Jinja2 autoescape, attributes included), every path
taken from a results or status file must stay inside its folder, and a damaged file is shown as
damaged instead of stopping the build.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import jinja2

from ..files import atomic_write_text
from . import display, provenance
from .folder import inside
from .status import notebook_names, now, results_problems, shown_run, statuses

PROFILES = ("paper", "smoke")
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
VERDICTS = ("beats", "below", "tie")


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def href(path: Path, start: Path) -> str:
    """A relative URL from ``start`` to ``path`` (percent-encoded; the template escapes it too)."""
    return quote(Path(os.path.relpath(path, start)).as_posix())


def _text(x, default: str = "") -> str:
    return x if isinstance(x, str) else (display.number(x) if isinstance(x, (int, float)) else default)


def _list(x) -> list:
    return x if isinstance(x, list) else []


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def run_time_text(notebook_seconds, runs) -> str | None:
    """The notebook's wall time, and where it reused stored units, how long those took when they
    were computed: a run that reused 12 units in 26 s did not cost 26 s."""
    if notebook_seconds is None:
        return None
    text = _duration(notebook_seconds)
    units = [u for u in _list(runs.get("units")) if isinstance(u, dict)] if isinstance(runs, dict) else []
    reused = sum(u.get("reused") is True for u in units)
    if reused:
        work = sum(s for u in units if (s := display.as_number(u.get("seconds"))) is not None)
        text += f" ({reused} of {len(units)} run units reused; all {len(units)} took {_duration(work)} when computed)"
    return text


def headline_rows(res: dict) -> list[dict]:
    """The headline lines as the index shows them: paper, ours (a number or a stored Summary),
    and ``ours - paper`` coloured better/worse; no delta where ``comparable`` is false."""
    rows = []
    for h in _list(res.get("headline")):
        if not isinstance(h, dict):
            continue
        p, o = display.as_number(h.get("paper")), display.as_number(h.get("ours"))
        better = h.get("better", "higher") if h.get("better", "higher") in display.BETTER else None
        comparable = h.get("comparable", True) is not False and res.get("comparable") is not False
        delta = o - p if comparable and p is not None and o is not None else None
        rows.append({
            "what": _text(h.get("what"), "?"), "note": _text(h.get("note")),
            "paper": display.value_text(h.get("paper")), "ours": display.value_text(h.get("ours")),
            "delta": display.signed(delta) if delta is not None else ("not comparable" if not comparable else "\u2013"),
            "delta_value": delta, "style": display.delta_style(delta, p, better) if delta is not None else "",
            "better": better,
        })
    return rows


def claim_rows(res: dict) -> list[dict]:
    """The paired claims (:meth:`Report.claim`) as one line each, from their numbers."""
    rows = []
    for c in _list(res.get("claims")):
        if not isinstance(c, dict):
            continue
        mean, n = display.as_number(c.get("diff_mean")), c.get("diff_n")
        if mean is None:
            continue
        ci = _list(c.get("diff_ci95"))
        lo, hi = (display.as_number(ci[0]), display.as_number(ci[1])) if len(ci) == 2 else (None, None)
        text = f"{_text(c.get('a'), 'a')} \u2212 {_text(c.get('b'), 'b')} = {mean:+.4f}"
        if lo is not None and hi is not None:
            text += f", 95 % CI [{lo:+.4f}, {hi:+.4f}]"
        if isinstance(n, int) and not isinstance(n, bool):
            text += f" (n = {n})"
        verdict = c.get("verdict") if c.get("verdict") in VERDICTS else "?"
        rows.append({"what": _text(c.get("what")), "text": text, "verdict": verdict})
    return rows


def _thumbs(res: dict, folder: Path, reports: Path) -> tuple[list[dict], list[str]]:
    thumbs, bad = [], []
    caps = res.get("captions") if isinstance(res.get("captions"), dict) else {}
    for rel in _list(res.get("figures")):
        f = inside(folder, rel)
        if f is None:
            bad.append(f"figure path {str(rel)[:80]!r} leaves its folder: not shown")
            continue
        if not f.is_file():
            continue
        url = href(f, reports)
        thumbs.append({"href": url, "caption": f"{Path(rel).stem}: {_text(caps.get(rel))}"})
    return thumbs, bad


def _page_links(name: str, profile: str, status: dict | None, folder: Path | None, source: str,
                reports: Path) -> list[dict]:
    links = []
    html_dir = reports / "html"
    for fname, label in ((f"{name}.{profile}.html", "report"), (f"{name}.{profile}.full.html", "with code")):
        if (html_dir / fname).is_file():
            links.append({"href": href(html_dir / fname, reports), "text": label})
    if source == "results" and folder is not None and (folder / "report.html").is_file():
        links.append({"href": href(folder / "report.html", reports), "text": "published report"})
    log = inside(reports, (status or {}).get("log"))
    if log is not None and log.is_file():
        links.append({"href": href(log, reports), "text": "log"})
    return links


def run_view(name: str, profile: str, status: dict | None, reports: Path, results: Path) -> dict | None:
    """What the index shows of one notebook at one profile (None: nothing to show)."""
    rec, folder, source = shown_run(name, profile, reports, results)
    res = rec.data
    failed = status is not None and status.get("status") != "ok"
    # a published CPU-sized run (cpu32, cpu4000) stands in the paper's place under its own name
    shown = res.get("profile") if source == "results" and isinstance(res.get("profile"), str) else profile
    view = {"profile": shown, "badges": [], "failed": None, "warnings": [], "damaged": [], "links": [],
            "prov": None, "not_comparable": None, "headline": [], "claims": [], "thumbs": [], "notes": [],
            "norun": False, "empty": False}
    if status is not None:
        view["badges"].append(("failed" if failed else "ok", f"latest run {status.get('status')}", ""))
    if rec.problem:
        view["damaged"].append(f"{rec.path.relative_to(rec.path.parents[2]).as_posix()}: {rec.problem}")
        view["badges"].append(("failed", "damaged results", ""))
    if failed and res:
        view["badges"].append(("stale", "stale: numbers from an earlier run",
                               f"the latest run failed; these numbers come from the earlier complete run of "
                               f"{provenance.date_text(res)}"))
    if source == "results" and res:
        view["badges"].append(("published", "published run from results/", ""))
    part = res.get("partial")
    if part:
        text = (f"partial: {_text(part.get('done'), '?')} of {_text(part.get('total'), '?')} run units done"
                if isinstance(part, dict) else "partial run")
        view["badges"].append(("partial", text, ""))
    if not res and status is None and not rec.problem:
        if profile != "paper":
            return None
        view["norun"] = True
        view["command"] = f"./run_all.sh --profile paper {name.split('_')[0]}"
        return view
    view["links"] = _page_links(name, profile, status, folder, source, reports)
    if failed:
        view["failed"] = {"when": provenance.date_text({"finished": status.get("finished")}),
                          "seconds": display.number(round(status.get("seconds"))) if isinstance(
                              status.get("seconds"), (int, float)) else "?",
                          "error": _text(status.get("error"), "no error line")}
    if status is not None and status.get("warning"):
        view["warnings"].append(_text(status.get("warning")))
    if not res:
        view["empty"] = True
        return view
    view["damaged"] += [f"results.json: {p}" for p in results_problems(res)]
    timings = res.get("timings") if isinstance(res.get("timings"), dict) else {}
    secs = display.as_number(timings.get("notebook"))
    view["prov"] = {"date": provenance.date_text(res), "minutes": run_time_text(secs, res.get("runs")),
                    "seed": _text(res.get("seed"), "?"), "commit": provenance.commit_text(res),
                    "hardware": provenance.hardware_text(res), "backend": provenance.backend_text(res)}
    if res.get("comparable") is False:
        view["not_comparable"] = _text(res.get("not_comparable_reason"), "no reason given")
    view["headline"] = headline_rows(res)
    view["claims"] = claim_rows(res)
    if folder is not None:
        view["thumbs"], bad = _thumbs(res, folder, reports)
        view["damaged"] += bad
    view["notes"] = [_text(n) for n in _list(res.get("notes")) if isinstance(n, str)]
    return view


def build(reports: Path, results: Path) -> Path:
    """Write ``reports/index.html``. Never stops on a damaged file: it is shown as damaged."""
    reports.mkdir(parents=True, exist_ok=True)
    st, damaged = statuses(reports)
    cards = []
    for name in notebook_names(reports, results):
        per = st.get(name, {})
        views = [run_view(name, p, per.get(p), reports, results) for p in PROFILES]
        views += [run_view(name, p, s, reports, results) for p, s in per.items() if p not in PROFILES]
        title = ""
        for p in PROFILES:
            t = shown_run(name, p, reports, results)[0].data.get("title")
            if isinstance(t, str) and t:
                title = t
                break
        cards.append({"name": name, "title": title, "runs": [v for v in views if v is not None]})
    page = _env().get_template("index.html.j2").render(
        generated=now().replace("T", " ").replace("+00:00", " UTC"), cards=cards,
        damaged=[f"status/{r.path.name}: {r.problem}" for r in damaged],
        key={"better": display.delta_style(1, 10, "higher"), "worse": display.delta_style(-1, 10, "higher"),
             "neutral": display.delta_style(1, 10, None)})
    return atomic_write_text(reports / "index.html", page)
