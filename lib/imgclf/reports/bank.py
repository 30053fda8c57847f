"""Finished run units carried between machines in git: ``results/<notebook>/banked-<profile>.json``.

A paper-scale run longer than one machine's time (a CI-sized session, a lent GPU) is finished in
slices, and each slice's finished units live in ``reports/<notebook>/runs/``, which git does not
track: a fresh clone starts from nothing. So:

- ``bank`` copies the record of every unit the last run of a profile finished (``result.json``:
  what the unit returned, its key, commit, seconds, settings and hardware; never weights or data) to
  ``results/<notebook>/banked-<profile>.json``, merged with what is banked there already;
- ``restore`` writes each record of ``results/<notebook>/`` (the published ``units.json`` and every
  ``banked-*.json``) back as ``reports/<notebook>/runs/<key>/result.json`` where that unit has none.

The next slice then reuses them like any finished unit. A record is found by its key, which holds
the call hash and the code hash (:mod:`imgclf.runs`): a unit whose settings or code changed since
it was banked gets another key and is computed again, never mixed in. A restored record says
where it came from (``restored_from``). Publishing a complete run of the profile removes its bank
(its units are then in ``units.json``). Only finished units travel: a unit stopped mid-way keeps
its checkpoint (weights) where it ran, and starts again from its first epoch elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config import NOTEBOOKS
from ..files import atomic_write_text
from .publish import records_json, unit_records
from .status import last_dir, read_record

RESULT = "result.json"


def bank_path(name: str, profile: str, results: Path) -> Path:
    return results / name / f"banked-{profile}.json"


def _records(path: Path) -> list[dict]:
    """The unit records of a ``units.json`` or ``banked-*.json`` file (those with a result)."""
    try:
        recs = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"{path}: not a list of unit records ({e})") from e
    if not isinstance(recs, list):
        raise SystemExit(f"{path}: not a list of unit records")
    return [r for r in recs if isinstance(r, dict) and r.get("key") and r.get("result") is not None]


def bank_one(name: str, profile: str, reports: Path, results: Path) -> tuple[Path | None, str]:
    """Bank the finished units of the last ``profile`` run of ``name`` (complete or stopped at its
    budget). Returns ``(bank file or None, what happened)``."""
    res = read_record(last_dir(name, profile, reports) / "results.json").data
    if not res:
        return None, f"no {profile}-profile run in reports/ (reports/{name}/last-{profile}/)"
    # each record keeps its hardware block: slices may run on different machines (and CPU kinds
    # differ in the last digits), so a banked unit says where it was computed
    new = [{**r, "hardware": read_record(reports / name / "runs" / r["key"] / RESULT).data.get("hardware")}
           for r in unit_records(res, reports / name / "runs") if r.get("result") is not None]
    path = bank_path(name, profile, results)
    old = _records(path) if path.is_file() else []
    merged = {r["key"]: r for r in old}
    added = [r for r in new if r["key"] not in merged]
    merged.update({r["key"]: r for r in new})
    if not merged:
        return None, "no finished unit to bank"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, records_json(sorted(merged.values(), key=lambda r: r["key"])))
    size = path.stat().st_size
    return path, f"{len(merged)} finished units banked ({len(added)} new), {size / 1e3:.0f} kB"


def restore_one(name: str, reports: Path, results: Path) -> tuple[int, int]:
    """Write the records under ``results/<name>/`` into ``reports/<name>/runs/``. Returns
    ``(written, already there)``."""
    folder = results / name
    files = ([folder / "units.json"] if (folder / "units.json").is_file() else []) + sorted(folder.glob("banked-*.json"))
    written = present = 0
    for f in files:
        for rec in _records(f):
            key = str(rec["key"])
            if "/" in key or key.startswith("."):  # a key names one folder under runs/, nothing else
                raise SystemExit(f"{f}: unit key {key!r} is not a folder name")
            dst = reports / name / "runs" / key / RESULT
            if dst.is_file():
                present += 1
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(dst, json.dumps({**rec, "restored_from": f"results/{name}/{f.name}"}, indent=1) + "\n")
            written += 1
    return written, present


def _names(prefixes: list[str]) -> list[str]:
    return [n for n in NOTEBOOKS if not prefixes or any(n.startswith(p) for p in prefixes)]


def bank(prefixes: list[str], reports: Path, results: Path, profile: str) -> int:
    banked = 0
    for name in _names(prefixes):
        path, what = bank_one(name, profile, reports, results)
        print(f"{name}: {what}" + (f" -> {path.relative_to(results.parent)}" if path else ""))
        banked += path is not None
    return 0 if banked else 1


def restore(prefixes: list[str], reports: Path, results: Path) -> int:
    for name in _names(prefixes):
        written, present = restore_one(name, reports, results)
        if written or present:
            print(f"{name}: {written} unit records restored to reports/{name}/runs/"
                  + (f" ({present} were there already)" if present else ""))
    return 0
