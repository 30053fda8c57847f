"""``results/``: the last complete paper-profile run of each notebook, tracked in git, with its
report page; and the README's result tables made from it.

``results/<notebook>/`` holds ``results.json`` (with ``published``), ``units.json`` (the record of
every run unit the run used: key, commit, seconds and result, what ``./run_all.sh reproduce``
recomputes and compares), the CSV tables, the figures as small PNGs (at most :data:`FIGURE_MAX_WIDTH` px wide) and ``report.html``, the report view of
that run rendered with those small figures. The whole folder must fit :data:`PUBLISH_BUDGET`:
figures are quantised to 256 colours when over it, and the report page is left out (and the run
says so) when it still does not fit.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

from ..config import NOTEBOOKS
from ..files import atomic_write, atomic_write_text
from . import provenance
from .folder import inside
from .index import headline_rows
from .status import PUBLISHED_PROFILES, last_dir, now, read_record

FIGURE_MAX_WIDTH = 1100
"""Figures published to results/ are at most this wide (px)."""
PUBLISH_BUDGET = 3_000_000
"""Bytes per notebook under results/ (tables, figures and report page together)."""
REPORT = "report.html"
UNITS = "units.json"


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


def _report_page(notebook: Path, folder: Path) -> int:
    """Render ``notebook`` (the run's executed notebook) as ``folder/report.html`` with each figure
    output replaced by the published PNG of the same figure; returns its size (0: no notebook)."""
    import nbformat

    from ..render import render_report

    if not notebook.is_file():
        return 0
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            rel = ((out.get("metadata") or {}).get("imgclf") or {}).get("figure")
            small = inside(folder, rel) if rel else None
            if small is not None and small.is_file() and "image/png" in out.get("data", {}):
                out["data"]["image/png"] = base64.b64encode(small.read_bytes()).decode("ascii")
    render_report(nb, folder / REPORT, folder / "results.json", links=False)
    return (folder / REPORT).stat().st_size


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def records_json(records: list[dict]) -> str:
    """A list of unit records as JSON, one record per line: a unit's 10,000 predictions stay on its
    line (git diffs show which units changed; ``indent`` would give every number a line)."""
    return "[\n" + ",\n".join(json.dumps(r, separators=(",", ":")) for r in records) + "\n]\n"


def unit_records(res: dict, runs_dir: Path) -> list[dict]:
    """The stored record of every unit the run ``res`` used (``res["runs"]["units"]``), read from
    ``runs_dir/<key>/result.json``, without the hardware block (``results.json`` has it)."""
    out = []
    for u in (res.get("runs") or {}).get("units") or []:
        rec = read_record(runs_dir / u["key"] / "result.json").data
        if rec.get("key") == u["key"]:
            out.append({k: v for k, v in rec.items() if k != "hardware"})
        else:
            out.append({**u, "result": None, "missing": "no record left in reports/: recomputed or deleted since"})
    return out


def publish_one(name: str, reports: Path, results: Path, profile: str = "paper") -> tuple[Path | None, str]:
    """Copy the last complete ``profile`` run of ``name`` to ``results/<name>/`` (see the
    module). Returns ``(folder or None, what happened)``."""
    src = last_dir(name, profile, reports)
    res = read_record(src / "results.json").data
    if not res:
        return None, f"no complete {profile}-profile run in reports/"
    part = res.get("partial")
    if isinstance(part, dict) and part.get("done") != part.get("total"):
        return None, f"the last paper run is partial ({part.get('done')} of {part.get('total')}): not published"
    dst = results / name
    tmp = results / f".{name}.part"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "figures").mkdir(parents=True)
    tables = [rel for rel in res.get("tables", []) if (f := inside(src, rel)) is not None and f.is_file()]
    for rel in tables:
        shutil.copyfile(inside(src, rel), inside(tmp, rel))
    figs = [rel for rel in res.get("figures", []) if (f := inside(src, rel)) is not None and f.is_file()]
    for rel in figs:
        _small_png(inside(src, rel), inside(tmp, rel))
    if _size(tmp) > PUBLISH_BUDGET:
        for rel in figs:
            _small_png(inside(src, rel), inside(tmp, rel), quantize=True)
    res["published"] = {"date": now(), "figures": f"PNG, at most {FIGURE_MAX_WIDTH} px wide",
                        "from": f"reports/{name}/last-{profile}"}
    units = unit_records(res, reports / name / "runs")
    if units:
        atomic_write_text(tmp / UNITS, records_json(units))
        res["published"]["units"] = UNITS
    atomic_write_text(tmp / "results.json", json.dumps(res, indent=2) + "\n")
    page = _report_page(src / "notebook.ipynb", tmp)
    if page and _size(tmp) > PUBLISH_BUDGET:  # the page embeds the figures again: quantise them, render again
        for rel in figs:
            _small_png(inside(src, rel), inside(tmp, rel), quantize=True)
        page = _report_page(src / "notebook.ipynb", tmp)
    if page and _size(tmp) > PUBLISH_BUDGET:
        (tmp / REPORT).unlink()
        res["published"]["report"] = f"left out: {page / 1e6:.1f} MB would exceed {PUBLISH_BUDGET / 1e6:.1f} MB"
    else:
        res["published"]["report"] = REPORT if page else "no executed notebook kept with the run"
    atomic_write_text(tmp / "results.json", json.dumps(res, indent=2) + "\n")
    # units banked by slices of other profiles stay (imgclf.reports.bank); this profile's are now in units.json
    for f in dst.glob("banked-*.json"):
        if f.name != f"banked-{profile}.json":
            shutil.copyfile(f, tmp / f.name)
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    return dst, (f"{len(figs)} figures, {len(tables)} tables, report page: {res['published']['report']}, "
                 f"{_size(dst) / 1e6:.2f} MB")


def publish(prefixes: list[str], reports: Path, results: Path, profile: str = "paper") -> int:
    if profile not in PUBLISHED_PROFILES:
        raise SystemExit(f"publish: profile {profile!r} is not published; one of {list(PUBLISHED_PROFILES)}")
    names = [n for n in NOTEBOOKS if not prefixes or any(n.startswith(p) for p in prefixes)]
    published = 0
    for name in names:
        dst, what = publish_one(name, reports, results, profile)
        print(f"{name}: {'published to results/' + name + ': ' if dst else ''}{what}")
        published += dst is not None
    return 0 if published or not prefixes else 1


# ----------------------------------------------------------------------------------------------
# README tables from results/
# ----------------------------------------------------------------------------------------------
def _md(v) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def readme_block(name: str, results: Path) -> str:
    """The markdown the README shows for ``name``: the headline of its published run (paper
    profile, or a CPU-sized one named as such)."""
    res = read_record(results / name / "results.json").data
    prefix = name.split("_")[0]
    if not res:
        return (f"_No paper-profile run published yet: `./run_all.sh --profile paper {prefix}` fills "
                f"`results/{name}/` and `./run_all.sh readme` this table._")
    report = f", [report](results/{name}/{REPORT})" if (results / name / REPORT).is_file() else ""
    profile = res.get("profile")
    # a CPU-sized profile (cpu32, cpu4000) published in the paper's place says so by its name
    what = ("Paper profile" if profile == "paper"
            else f"Profile `{_md(profile)}` (sized for a CPU, not the paper's scale)")
    lines = [f"{what}, run {provenance.date_text(res)}, {provenance.commit_text(res)}, on "
             f"{provenance.hardware_text(res)} ([`results/{name}/`](results/{name}/results.json){report}):", ""]
    if res.get("comparable") is False:
        lines += [f"**NOT COMPARABLE with the paper:** {_md(res.get('not_comparable_reason'))}", ""]
    lines += ["| | paper | ours | ours − paper |", "|---|---:|---:|---:|"]
    for h in headline_rows(res):
        what = _md(h["what"]) + (f" ({_md(h['note'])})" if h.get("note") else "")
        lines.append(f"| {what} | {_md(h['paper'])} | {_md(h['ours'])} | {_md(h['delta'])} |")
    return "\n".join(lines)


def update_readme(path: Path, results: Path) -> list[str]:
    """Replace each ``<!-- results:NN -->`` ... ``<!-- /results:NN -->`` block of ``path`` with
    :func:`readme_block`; returns the notebooks whose block changed (the file is rewritten only
    when one did)."""
    text = old = path.read_text()
    done = []
    for name in NOTEBOOKS:
        nn = name.split("_")[0]
        pat = re.compile(rf"(<!-- results:{nn} -->\n).*?(\n?<!-- /results:{nn} -->)", re.S)
        m = pat.search(text)
        if m:
            block = readme_block(name, results)
            new = pat.sub(lambda m: m.group(1) + block + "\n" + m.group(2).lstrip("\n"), text)
            if new != text:
                done.append(name)
            text = new
    if text != old:
        atomic_write_text(path, text)
    return done
