"""``reports/index.html``, the published paper-scale results under ``results/`` and the README's
result tables.

Used by ``run_all.sh``::

    python -m imgclf.index status [--reports DIR] NAME ok|failed SECONDS PROFILE LOGFILE  # after each notebook
    python -m imgclf.index build [--reports DIR]                                         # at the end
    python -m imgclf.index publish [--reports DIR] [PREFIX ...]   # last complete paper runs -> results/
    python -m imgclf.index readme [README]                        # README tables from results/

What the index shows, per notebook and profile (paper and smoke side by side):

* the numbers of the last *complete* run of that profile: ``status`` snapshots a run that ended
  ok (``results.json``, its CSV tables and figures) into ``reports/<notebook>/last-<profile>/``;
  only ``results.json`` is read, so a run in progress or a failed one never changes them;
* the latest run's status from ``reports/status/<notebook>-<profile>.json``: when it failed and
  the numbers come from an earlier run, a **stale** marker says so; a run whose results say
  ``partial`` (work done in slices under a time budget) is marked **partial**;
* provenance (profile, date, hardware, git commit), the headline paper vs ours with deltas and
  thumbnails of the figures linking to the full PNGs;
* for the paper profile, when ``reports/`` has no paper run, the published one in ``results/``.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
import re
import shutil
import sys
from pathlib import Path

from .config import NOTEBOOKS, REPO_ROOT
from .reports import _number, _signed, atomic_write, atomic_write_text, delta_style

REPORTS = REPO_ROOT / "reports"
RESULTS = REPO_ROOT / "results"
README = REPO_ROOT / "README.md"
PROFILES = ("paper", "smoke")
FIGURE_MAX_WIDTH = 1100
"""Figures published to results/ are at most this wide (px)."""
PUBLISH_BUDGET = 2_000_000
"""Bytes per notebook under results/; figures are quantised to 256 colours when over it."""

_ERROR = re.compile(r"^\s*([A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit))\b.*")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def error_reason(log: str) -> str:
    """The last exception line of a papermill log (or its last line)."""
    lines = [l.rstrip() for l in log.splitlines() if l.strip()]
    hits = [l.strip() for l in lines if _ERROR.match(l) and "PapermillExecutionError" not in l]
    return (hits[-1] if hits else (lines[-1] if lines else "no output"))[:500]


# --------------------------------------------------------------------------------------------
# After each notebook: the status record and the snapshot of a complete run
# --------------------------------------------------------------------------------------------
def last_dir(name: str, profile: str, reports: Path = REPORTS) -> Path:
    """Where the last complete run of ``name`` at ``profile`` is kept."""
    return reports / name / f"last-{profile}"


def snapshot(name: str, profile: str, reports: Path = REPORTS) -> Path | None:
    """Copy a finished run (``results.json`` of that profile, its tables and figures) to
    :func:`last_dir`; None when ``reports/<name>/results.json`` is neither a complete run of
    ``profile`` nor one that stopped at its time budget with ``partial`` progress recorded."""
    src = reports / name
    res = _read_json(src / "results.json")
    if not (res.get("complete") or res.get("partial")) or res.get("profile") != profile:
        return None
    dst = last_dir(name, profile, reports)
    tmp = dst.with_name(dst.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "figures").mkdir(parents=True)
    for rel in [*res.get("tables", []), *res.get("figures", [])]:
        if (src / rel).is_file():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, tmp / rel)
    shutil.copyfile(src / "results.json", tmp / "results.json")
    old = dst.with_name(dst.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dst.exists():
        dst.rename(old)
    tmp.rename(dst)
    shutil.rmtree(old, ignore_errors=True)
    return dst


def record_status(name: str, status: str, seconds: float, profile: str, log_path: str | None = None,
                  reports: Path = REPORTS) -> dict:
    """Write ``reports/status/<name>-<profile>.json`` for the run that just ended; snapshot it
    when it ended ok with complete results."""
    rec = {"name": name, "status": status, "seconds": float(seconds), "profile": profile, "finished": _now()}
    if log_path:
        rec["log"] = os.path.relpath(log_path, reports) if Path(log_path).is_absolute() else str(log_path)
    if status != "ok" and log_path and Path(log_path).exists():
        rec["error"] = error_reason(Path(log_path).read_text(errors="replace"))
    if status == "ok" and snapshot(name, profile, reports) is None:
        rec["warning"] = "the notebook ended without complete results.json (report.finish() not reached?)"
    atomic_write_text(reports / "status" / f"{name}-{profile}.json", json.dumps(rec, indent=2))
    return rec


# --------------------------------------------------------------------------------------------
# Which numbers to show
# --------------------------------------------------------------------------------------------
def shown_run(name: str, profile: str, reports: Path = REPORTS, results: Path = RESULTS) -> tuple[dict, Path | None, str]:
    """``(results, folder, source)`` of the run the index shows for ``name`` at ``profile``:
    the last complete run in ``reports/`` (source ``"reports"``), else for the paper profile the
    published one in ``results/`` (``"results"``), else ``({}, None, "")``."""
    d = last_dir(name, profile, reports)
    res = _read_json(d / "results.json")
    if res:
        return res, d, "reports"
    if profile == "paper":
        res = _read_json(results / name / "results.json")
        if res.get("complete") and res.get("profile") == "paper":
            return res, results / name, "results"
    return {}, None, ""


_MEAN_SD = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(?:±|\(n=)")


def _num(v) -> float | None:
    """A number, or the mean of a ``"0.9679 ± 0.0036 (n=2)"`` / ``"0.97 (n=1)"`` cell; else None."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, dict) and "mean" in v:  # a stats.Summary stored as numbers
        v = v["mean"]
    if isinstance(v, str) and (m := _MEAN_SD.match(v)):
        v = m.group(1)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fmt(v) -> str:
    return html.escape(_number(v))


def _fmt_delta(paper, ours) -> tuple[str, str]:
    p, o = _num(paper), _num(ours)
    if p is None or o is None:
        return "–", ""
    return _signed(o - p), delta_style(o - p, p)


def _commit(res: dict) -> str:
    git = res.get("git") or {}
    c = git.get("commit")
    if not c:
        return "commit unknown"
    return f"commit {c[:10]}" + (" + uncommitted changes" if git.get("dirty") else "")


def _hardware(res: dict) -> str:
    hw = res.get("hardware") or {}
    gpus = ", ".join(hw.get("gpus") or [])
    cpu = f"{hw.get('cpu', '?')} ({hw.get('cpu_count', '?')} cores)"
    return f"{gpus}; {cpu}" if gpus else cpu


def _date(res: dict) -> str:
    return (res.get("finished") or res.get("started") or "?").replace("T", " ").replace("+00:00", " UTC")


def _partial(res: dict) -> str | None:
    p = res.get("partial")
    if not p:
        return None
    if isinstance(p, dict):
        return f"partial: {p.get('done', '?')} of {p.get('total', '?')} run units done"
    return "partial run"


def headline_rows(res: dict) -> list[dict]:
    """The headline lines with their delta (``ours - paper`` where both are numbers)."""
    rows = []
    for h in res.get("headline", []):
        p, o = _num(h.get("paper")), _num(h.get("ours"))
        rows.append({**h, "delta": (o - p) if p is not None and o is not None else None})
    return rows


# --------------------------------------------------------------------------------------------
# index.html
# --------------------------------------------------------------------------------------------
CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#1f2328;max-width:1500px}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin:0}
.nb{border:1px solid #d0d7de;border-radius:6px;margin:1.2em 0;padding:.8em 1em}
.nb-head{display:flex;gap:1em;align-items:baseline;flex-wrap:wrap;margin-bottom:.5em}
.nb-head small{color:#57606a}
.runs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
.run{flex:1 1 430px;background:#f6f8fa;border-radius:6px;padding:.6em .8em;min-width:0}
.run h3{font-size:1em;margin:0 0 .3em 0}
.run.norun{flex-basis:100%;padding:.3em .8em}
.badge{display:inline-block;border-radius:10px;padding:0 .6em;font-size:.8em;font-weight:600;margin-left:.3em}
.ok{background:#dafbe1;color:#116329} .failed{background:#ffebe9;color:#a40e26}
.stale{background:#fff1c2;color:#7d4e00} .partial{background:#ddf4ff;color:#0550ae}
.published{background:#eee;color:#333} .none{background:#eee;color:#57606a}
.prov{font-size:.8em;color:#57606a;margin:.2em 0 .5em 0}
.warn{color:#a40e26;font-weight:600;font-size:.9em}
table.head{border-collapse:collapse;font-size:.85em;width:100%;margin:.3em 0}
table.head td,table.head th{border:1px solid #d0d7de;padding:2px 6px;text-align:left;vertical-align:top}
table.head td.n{text-align:right;white-space:nowrap}
.thumbs{display:flex;flex-wrap:wrap;gap:6px;margin-top:.5em}
.thumbs a{display:block;border:1px solid #d0d7de;background:#fff}
.thumbs img{height:80px;width:auto;max-width:170px;object-fit:contain;display:block}
details{font-size:.85em;margin-top:.4em} code{font-size:.85em;white-space:pre-wrap}
"""


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _run_block(name: str, profile: str, status: dict | None, reports: Path, results: Path) -> str:
    res, folder, source = shown_run(name, profile, reports, results)
    badges = []
    failed = status is not None and status.get("status") != "ok"
    if status is not None:
        badges.append(f'<span class="badge {"failed" if failed else "ok"}">latest run {html.escape(status["status"])}</span>')
    if failed and res:
        badges.append(f'<span class="badge stale" title="the latest run failed; these numbers come from the '
                      f'earlier complete run of {html.escape(_date(res))}">stale: numbers from an earlier run</span>')
    if source == "results":
        badges.append('<span class="badge published">published run from results/</span>')
    part = _partial(res) if res else None
    if part:
        badges.append(f'<span class="badge partial">{html.escape(part)}</span>')
    if not res and status is None:
        if profile != "paper":
            return ""
        prefix = name.split("_")[0]
        return (f'<div class="run norun"><b>paper profile</b><span class="badge none">no run yet</span> '
                f'<span class="prov">neither <code>reports/</code> nor <code>results/</code> holds a paper-scale run: '
                f'<code>./run_all.sh --profile paper {html.escape(prefix)}</code></span></div>')
    out = [f'<div class="run"><h3>{html.escape(profile)} profile{"".join(badges)}</h3>']
    if failed:
        when = html.escape(status.get("finished", "").replace("T", " ").replace("+00:00", " UTC"))
        out.append(f'<div class="warn">latest run failed {when} after {status.get("seconds", 0):.0f} s: '
                   f'<code>{_fmt(status.get("error"))}</code></div>')
    if status is not None and status.get("warning"):
        out.append(f'<div class="warn">{_fmt(status["warning"])}</div>')
    if not res:
        out.append('<p class="prov">no complete run of this profile yet</p></div>')
        return "".join(out)
    secs = (res.get("timings") or {}).get("notebook")
    out.append(f'<div class="prov">run {html.escape(_date(res))}'
               f'{f" · {secs / 60:.1f} min" if isinstance(secs, (int, float)) else ""} · seed {_fmt(res.get("seed"))}'
               f' · {html.escape(_commit(res))}<br>{html.escape(_hardware(res))}</div>')
    if res.get("comparable") is False:
        out.append(f'<div class="warn">NOT COMPARABLE with the paper: {_fmt(res.get("not_comparable_reason"))}</div>')
    rows = headline_rows(res)
    if rows:
        body = []
        for h in rows:
            d, style = _fmt_delta(h.get("paper"), h.get("ours"))
            note = f"<br><small>{_fmt(h.get('note'))}</small>" if h.get("note") else ""
            body.append(f"<tr><td>{_fmt(h['what'])}{note}</td><td class='n'>{_fmt(h.get('paper'))}</td>"
                        f"<td class='n'>{_fmt(h.get('ours'))}</td><td class='n' style='{style}'>{d}</td></tr>")
        out.append("<table class='head'><tr><th>headline</th><th>paper</th><th>ours</th><th>ours − paper</th></tr>"
                   + "".join(body) + "</table>")
    figs = res.get("figures") or []
    if figs:
        caps = res.get("captions") or {}
        thumbs = []
        for rel in figs:
            f = folder / rel
            if not f.is_file():
                continue
            href = _rel(f, reports)
            cap = html.escape(f"{Path(rel).stem}: {caps.get(rel, '')}", quote=True)
            thumbs.append(f'<a href="{href}" title="{cap}"><img src="{href}" alt="{cap}"></a>')
        out.append(f'<div class="thumbs">{"".join(thumbs)}</div>')
    notes = res.get("notes") or []
    if notes:
        out.append(f"<details><summary>{len(notes)} notes on data and set-up</summary><ul>"
                   + "".join(f"<li>{_fmt(n)}</li>" for n in notes) + "</ul></details>")
    out.append("</div>")
    return "".join(out)


def notebook_names(reports: Path = REPORTS, results: Path = RESULTS) -> list[str]:
    """Every notebook with a status record, a kept run in ``reports/`` or a published run."""
    names = {json.loads(f.read_text()).get("name") for f in (reports / "status").glob("*.json")} if (reports / "status").is_dir() else set()
    names |= {p.parent.parent.name for p in reports.glob("*/last-*/results.json")}
    names |= {p.parent.name for p in results.glob("*/results.json")} if results.is_dir() else set()
    return sorted(n for n in names if n)


def build(reports: Path = REPORTS, results: Path = RESULTS) -> Path:
    """Write ``reports/index.html``."""
    reports.mkdir(parents=True, exist_ok=True)
    statuses: dict[str, dict[str, dict]] = {}
    for f in sorted((reports / "status").glob("*.json")):
        rec = _read_json(f)
        if rec.get("name"):
            statuses.setdefault(rec["name"], {})[rec.get("profile", "?")] = rec
    cards = []
    for name in notebook_names(reports, results):
        st = statuses.get(name, {})
        blocks = [_run_block(name, p, st.get(p), reports, results) for p in PROFILES]
        blocks += [_run_block(name, p, s, reports, results) for p, s in st.items() if p not in PROFILES]
        title = next((shown_run(name, p, reports, results)[0].get("title") for p in PROFILES
                      if shown_run(name, p, reports, results)[0].get("title")), "")
        links = []
        latest = max(st.values(), key=lambda r: r.get("finished", ""), default=None)
        if (reports / "html" / f"{name}.html").exists():
            what = f" ({latest['profile']}, {latest['status']})" if latest else ""
            links.append(f'<a href="html/{html.escape(name)}.html">report{html.escape(what)}</a>')
        if (reports / "html" / f"{name}.full.html").exists():
            links.append(f'<a href="html/{html.escape(name)}.full.html">with code</a>')
        if latest and latest.get("log") and (reports / latest["log"]).exists():
            links.append(f'<a href="{html.escape(latest["log"])}">log</a>')
        cards.append(f'<section class="nb" id="{html.escape(name)}"><div class="nb-head"><h2>{html.escape(name)}</h2>'
                     f'<small>{_fmt(title)}</small><span>{" · ".join(links)}</span></div>'
                     f'<div class="runs">{"".join(b for b in blocks if b)}</div></section>')
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>imgclf reports</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body><h1>Paper reproductions: paper vs ours</h1>
<p>Generated by <code>./run_all.sh</code> on {_now().replace("T", " ").replace("+00:00", " UTC")}.
Per notebook, the last complete run of each profile: <b>paper</b> (the paper's scale) beside <b>smoke</b>
(a 2-core CPU in minutes, not comparable in size). <span class="badge stale">stale</span> the latest run
failed and the numbers are an earlier run's; <span class="badge partial">partial</span> only part of the
work is done; <span class="badge published">published</span> from <code>results/</code> (tracked in git).
Deltas are ours − paper: <span style="{delta_style(1, 10)}">&nbsp;higher&nbsp;</span>
<span style="{delta_style(-1, 10)}">&nbsp;lower&nbsp;</span>, stronger = larger relative difference.</p>
{''.join(cards) or '<p>No runs yet: <code>./run_all.sh</code>.</p>'}
</body></html>
"""
    return atomic_write_text(reports / "index.html", page)


# --------------------------------------------------------------------------------------------
# results/: the last paper-profile run of each notebook, tracked in git
# --------------------------------------------------------------------------------------------
def _small_png(src: Path, dst: Path, quantize: bool = False) -> int:
    from PIL import Image

    with Image.open(src) as im:
        im.load()
        if im.width > FIGURE_MAX_WIDTH:
            im = im.resize((FIGURE_MAX_WIDTH, round(im.height * FIGURE_MAX_WIDTH / im.width)), Image.LANCZOS)
        if quantize:
            im = im.convert("RGB").quantize(256)
        atomic_write(dst, lambda f: im.save(f, format="PNG", optimize=True))
    return dst.stat().st_size


def publish_one(name: str, reports: Path = REPORTS, results: Path = RESULTS) -> tuple[Path | None, str]:
    """Copy the last complete paper-profile run of ``name`` to ``results/<name>/``: results.json
    (with ``published``), its CSV tables and its figures as small PNGs (at most
    :data:`FIGURE_MAX_WIDTH` px wide; quantised when the folder would exceed
    :data:`PUBLISH_BUDGET`). Returns ``(folder or None, what happened)``."""
    src = last_dir(name, "paper", reports)
    res = _read_json(src / "results.json")
    if not res:
        return None, "no complete paper-profile run in reports/"
    part = res.get("partial")
    if isinstance(part, dict) and part.get("done") != part.get("total"):
        return None, f"the last paper run is partial ({part.get('done')} of {part.get('total')}): not published"
    dst = results / name
    tmp = results / f".{name}.part"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "figures").mkdir(parents=True)
    size = 0
    for rel in res.get("tables", []):
        if (src / rel).is_file():
            shutil.copyfile(src / rel, tmp / rel)
            size += (tmp / rel).stat().st_size
    figs = [rel for rel in res.get("figures", []) if (src / rel).is_file()]
    fig_bytes = sum(_small_png(src / rel, tmp / rel) for rel in figs)
    if size + fig_bytes > PUBLISH_BUDGET:
        fig_bytes = sum(_small_png(src / rel, tmp / rel, quantize=True) for rel in figs)
    res["published"] = {"date": _now(), "from": _rel(src, reports.parent) if reports.parent in src.parents else str(src),
                        "figures": f"PNG, at most {FIGURE_MAX_WIDTH} px wide"}
    atomic_write_text(tmp / "results.json", json.dumps(res, indent=2) + "\n")
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    total = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file())
    return dst, f"{len(figs)} figures, {len(res.get('tables', []))} tables, {total / 1e6:.2f} MB"


def publish(prefixes: list[str], reports: Path = REPORTS, results: Path = RESULTS) -> int:
    names = [n for n in NOTEBOOKS if not prefixes or any(n.startswith(p) for p in prefixes)]
    published = 0
    for name in names:
        dst, what = publish_one(name, reports, results)
        print(f"{name}: {'published to ' + _rel(dst, results.parent) + ': ' if dst else ''}{what}")
        published += dst is not None
    return 0 if published or not prefixes else 1


# --------------------------------------------------------------------------------------------
# README tables from results/
# --------------------------------------------------------------------------------------------
def _md(v) -> str:
    return _number(v).replace("|", "\\|").replace("\n", " ")


def readme_block(name: str, results: Path = RESULTS) -> str:
    """The markdown the README shows for ``name``: its published paper-profile headline."""
    res = _read_json(results / name / "results.json")
    prefix = name.split("_")[0]
    if not res:
        return (f"_No paper-profile run published yet: `./run_all.sh --profile paper {prefix}` fills "
                f"`results/{name}/` and `./run_all.sh readme` this table._")
    lines = [f"Paper profile, run {_date(res)}, {_commit(res)}, on {_hardware(res)} "
             f"([`results/{name}/`](results/{name}/results.json)):", ""]
    if res.get("comparable") is False:
        lines += [f"**NOT COMPARABLE with the paper:** {_md(res.get('not_comparable_reason'))}", ""]
    lines += ["| | paper | ours | ours − paper |", "|---|---:|---:|---:|"]
    for h in headline_rows(res):
        what = _md(h["what"]) + (f" ({_md(h['note'])})" if h.get("note") else "")
        delta = _signed(h["delta"])
        lines.append(f"| {what} | {_md(h.get('paper'))} | {_md(h.get('ours'))} | {delta} |")
    return "\n".join(lines)


def update_readme(path: Path = README, results: Path = RESULTS) -> list[str]:
    """Replace each ``<!-- results:NN -->`` ... ``<!-- /results:NN -->`` block of ``path`` with
    :func:`readme_block`; returns the notebooks updated."""
    text = path.read_text()
    done = []
    for name in NOTEBOOKS:
        nn = name.split("_")[0]
        pat = re.compile(rf"(<!-- results:{nn} -->\n).*?(\n?<!-- /results:{nn} -->)", re.S)
        if pat.search(text):
            block = readme_block(name, results)
            text = pat.sub(lambda m: m.group(1) + block + "\n" + m.group(2).lstrip("\n"), text)
            done.append(name)
    atomic_write_text(path, text)
    return done


# --------------------------------------------------------------------------------------------
def reports_option(argv: list[str], default: Path) -> tuple[Path, list[str]]:
    """``--reports DIR`` taken out of ``argv`` (the command lines of index and browser)."""
    if "--reports" not in argv:
        return default, argv
    i = argv.index("--reports")
    return Path(argv[i + 1]).resolve(), argv[:i] + argv[i + 2:]


def main(argv: list[str]) -> int:
    reports, argv = reports_option(argv, REPORTS)
    if argv[:1] == ["status"] and len(argv) >= 5:
        record_status(argv[1], argv[2], float(argv[3]), argv[4], argv[5] if len(argv) > 5 else None, reports=reports)
        return 0
    if argv[:1] == ["build"]:
        print(build(reports))
        return 0
    if argv[:1] == ["publish"]:
        return publish(argv[1:], reports)
    if argv[:1] == ["readme"]:
        path = Path(argv[1]) if len(argv) > 1 else README
        print(f"{path}: updated {', '.join(update_readme(path)) or 'nothing (no <!-- results:NN --> markers)'}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
