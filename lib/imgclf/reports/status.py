"""After each notebook: its status record and the snapshot of its last complete run per profile;
and reading those back (with the published runs under ``results/``) for the index, where any
file may be damaged or hostile.

* ``reports/status/<notebook>-<profile>.json``: how the latest run of that profile ended (ok or
  failed, with the error line of its log);
* ``reports/<notebook>/last-<profile>/``: the last complete (or budget-partial) run of that profile
  (``results.json``, tables, figures, the executed notebook), so a failed run never hides it;
* ``reports/<notebook>/published/``: a copy of ``results/<notebook>/`` the index links to, so a
  copy of ``reports/`` alone has no broken link.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..files import atomic_write_text
from .folder import inside, plain_name

_ERROR = re.compile(r"^\s*([A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit))\b.*")
MAX_JSON = 50_000_000
"""A status or results file larger than this is not read (shown as damaged)."""


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class Record:
    """A JSON object read back from a file: ``data`` ({} when missing or damaged) and ``problem``
    (None when whole; else what is wrong, for the index to show)."""

    path: Path
    data: dict = field(default_factory=dict)
    problem: str | None = None

    @property
    def exists(self) -> bool:
        return bool(self.data) or self.problem is not None


def read_record(path: Path) -> Record:
    """Read a JSON object from ``path``: missing -> empty record; unreadable, too large, not JSON
    or not an object -> a record with its ``problem``."""
    path = Path(path)
    if not path.exists():
        return Record(path)
    try:
        if path.stat().st_size > MAX_JSON:
            return Record(path, problem=f"larger than {MAX_JSON:,} bytes")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        return Record(path, problem=f"unreadable: {e.__class__.__name__}")
    except ValueError as e:
        return Record(path, problem=f"not valid JSON: {str(e)[:120]}")
    if not isinstance(data, dict):
        return Record(path, problem=f"a JSON {type(data).__name__}, not an object")
    return Record(path, data)


def results_problems(res: dict) -> list[str]:
    """What is wrong with the shape of a results.json (fields the index reads, of the wrong type)."""
    want = {"headline": list, "claims": list, "figures": list, "tables": list, "notes": list, "captions": dict,
            "git": dict, "hardware": dict, "timings": dict}
    return [f"'{k}' is a {type(res[k]).__name__}, not a {t.__name__}" for k, t in want.items()
            if res.get(k) is not None and not isinstance(res[k], t)]


def error_reason(log: str) -> str:
    """The last exception line of a papermill log (or its last line)."""
    lines = [line.rstrip() for line in log.splitlines() if line.strip()]
    hits = [line.strip() for line in lines if _ERROR.match(line) and "PapermillExecutionError" not in line]
    return (hits[-1] if hits else (lines[-1] if lines else "no output"))[:500]


PUBLISHED_PROFILES = ("paper", "cpu32", "cpu4000")
"""Profiles whose complete runs are published to results/ (the paper's, and the CPU-sized ones that
say what they are)."""


def last_dir(name: str, profile: str, reports: Path) -> Path:
    """Where the last complete run of ``name`` at ``profile`` is kept."""
    return reports / name / f"last-{profile}"


def executed_path(name: str, profile: str, reports: Path) -> Path:
    """The executed notebook ``run_all.sh`` writes for ``name`` at ``profile``."""
    return reports / "executed" / f"{name}.{profile}.ipynb"


def snapshot(name: str, profile: str, reports: Path) -> Path | None:
    """Copy a finished run (``results.json`` of that profile, its tables and figures, the executed
    notebook as ``notebook.ipynb``) to :func:`last_dir`; None when ``reports/<name>/results.json``
    is neither a complete run of ``profile`` nor one that stopped at its time budget with
    ``partial`` progress recorded."""
    src = reports / name
    res = read_record(src / "results.json").data
    if not (res.get("complete") or res.get("partial")) or res.get("profile") != profile:
        return None
    dst = last_dir(name, profile, reports)
    tmp = dst.with_name(dst.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "figures").mkdir(parents=True)
    for rel in [*res.get("tables", []), *res.get("figures", [])]:
        f, to = inside(src, rel), inside(tmp, rel)
        if f is not None and to is not None and f.is_file():
            to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, to)
    shutil.copyfile(src / "results.json", tmp / "results.json")
    if executed_path(name, profile, reports).is_file():
        shutil.copyfile(executed_path(name, profile, reports), tmp / "notebook.ipynb")
    old = dst.with_name(dst.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dst.exists():
        dst.rename(old)
    tmp.rename(dst)
    shutil.rmtree(old, ignore_errors=True)
    return dst


def record_status(name: str, status: str, seconds: float, profile: str, log_path: str | None, reports: Path) -> dict:
    """Write ``reports/status/<name>-<profile>.json`` for the run that just ended; snapshot it
    when it ended ok with complete results."""
    if plain_name(name) is None or plain_name(profile) is None:
        raise ValueError(f"notebook {name!r} and profile {profile!r} must be plain names")
    rec = {"name": name, "status": status, "seconds": float(seconds), "profile": profile, "finished": now()}
    if log_path:
        rec["log"] = os.path.relpath(log_path, reports) if Path(log_path).is_absolute() else str(log_path)
    if status != "ok" and log_path and Path(log_path).exists():
        rec["error"] = error_reason(Path(log_path).read_text(errors="replace"))
    if status == "ok" and snapshot(name, profile, reports) is None:
        rec["warning"] = "the notebook ended without complete results.json (report.finish() not reached?)"
    atomic_write_text(reports / "status" / f"{name}-{profile}.json", json.dumps(rec, indent=2))
    return rec


def statuses(reports: Path) -> tuple[dict[str, dict[str, dict]], list[Record]]:
    """``({notebook: {profile: status record}}, damaged records)`` from ``reports/status/``. A
    record whose name or profile is not a plain name, or whose file name does not match them,
    counts as damaged."""
    out: dict[str, dict[str, dict]] = {}
    damaged = []
    folder = reports / "status"
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        rec = read_record(f)
        name, profile = plain_name(rec.data.get("name")), plain_name(rec.data.get("profile"))
        if rec.problem is None and (name is None or profile is None or f.name != f"{name}-{profile}.json"):
            rec.problem = "its name or profile is missing, not a plain name, or not its file's name"
        if rec.problem is None and rec.data.get("status") not in ("ok", "failed"):
            rec.problem = f"status {str(rec.data.get('status'))[:40]!r} is neither ok nor failed"
        if rec.problem is not None:
            damaged.append(rec)
            continue
        out.setdefault(name, {})[profile] = rec.data
    return out, damaged


def mirror_published(name: str, results: Path, reports: Path) -> Path | None:
    """Copy ``results/<name>/`` (results.json, the figures and report it lists) to
    ``reports/<name>/published/`` when it changed, so the index links stay inside ``reports/``.
    Only files inside ``results/<name>/`` are copied. Returns the copy, or None."""
    src = results / name
    rec = read_record(src / "results.json")
    if not rec.data:
        return None
    dst = reports / name / "published"
    if read_record(dst / "results.json").data == rec.data:
        return dst
    tmp = dst.with_name("published.part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    figs = rec.data.get("figures")
    for rel in [*(figs if isinstance(figs, list) else []), "report.html"]:
        f, to = inside(src, rel), inside(tmp, rel)
        if f is not None and to is not None and f.is_file():
            to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, to)
    shutil.copyfile(src / "results.json", tmp / "results.json")
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    return dst


def shown_run(name: str, profile: str, reports: Path, results: Path) -> tuple[Record, Path | None, str]:
    """``(record, folder, source)`` of the run the index shows for ``name`` at ``profile``: the
    last complete run in ``reports/`` (source ``"reports"``), else for the paper profile the
    published one from ``results/``, through its copy in ``reports/`` (``"results"``), else an
    empty record. A damaged results.json comes back with its ``problem``."""
    d = last_dir(name, profile, reports)
    rec = read_record(d / "results.json")
    if rec.exists:
        return rec, d, "reports"
    if profile == "paper":
        pub = read_record(results / name / "results.json")
        if pub.problem:
            return pub, None, "results"
        # a CPU-sized profile (cpu32, cpu4000) is published in the paper's place, labelled by its name
        if pub.data.get("complete") and pub.data.get("profile") in PUBLISHED_PROFILES:
            mirror = mirror_published(name, results, reports)
            return read_record(mirror / "results.json"), mirror, "results"
    return Record(d), None, ""


def notebook_names(reports: Path, results: Path) -> list[str]:
    """Every notebook with a status record, a kept run in ``reports/`` or a published run."""
    names = set(statuses(reports)[0])
    names |= {p.parent.parent.name for p in reports.glob("*/last-*/results.json")}
    names |= {p.parent.name for p in results.glob("*/results.json")} if results.is_dir() else set()
    return sorted(n for n in names if plain_name(n))
