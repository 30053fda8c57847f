"""A notebook's report folder over its life cycle, and paths read back from it.

``reports/<notebook>/results.json`` and the tables and figures it lists are always the last
COMPLETE run. A run writes into ``reports/<notebook>/running/`` (its ``results.json`` is rewritten
after each step, ``complete: false``); :meth:`imgclf.reports.Report.finish` marks it complete there
(the commit point) and then :func:`promote` makes it the notebook's results: its files replace the
old ones, its ``results.json`` replaces the old one, files of the old run that the new one did not
write are removed, ``running/`` goes. A run that fails or is killed leaves the last complete
results untouched; a run killed during the promotion is rolled forward by the next Report (or by
:func:`recover`). Stale ``.*.part`` files of killed atomic writes are removed at the start of the
next run.

Every path read back from a file (``results.json``, status records) is untrusted: ``results/``
arrives through pull requests. :func:`inside` keeps it in its folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

RUNNING = "running"
"""The folder under ``reports/<notebook>/`` where the run in progress writes."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")


def plain_name(name: object) -> str | None:
    """``name`` when it can be one path component (a notebook or profile name): letters, digits,
    ``_.-``, not starting with a dot; else None."""
    return name if isinstance(name, str) and _NAME.match(name) and ".." not in name else None


def inside(folder: str | os.PathLike, rel: object) -> Path | None:
    """``folder / rel`` when ``rel`` is a relative path (a string) that stays inside ``folder``
    after every ``..`` and symbolic link is resolved; else None."""
    if not isinstance(rel, str) or not rel or "\x00" in rel or "\\" in rel:
        return None
    if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        return None
    base = Path(folder).resolve()
    path = (base / rel).resolve()
    return path if path != base and path.is_relative_to(base) else None


def _listed(results: dict) -> set[str]:
    """The tables and figures a results.json lists (relative paths that stay in the folder)."""
    names = set()
    for key in ("tables", "figures"):
        items = results.get(key) if isinstance(results, dict) else None
        names |= {n for n in (items if isinstance(items, list) else []) if isinstance(n, str)}
    return {n for n in names if n and not n.startswith("/") and ".." not in n.split("/") and "\\" not in n}


def promote(nb_dir: str | os.PathLike) -> bool:
    """Make ``<nb_dir>/running/`` the notebook's results if that run is complete; else do nothing.

    Moves each table and figure the new ``results.json`` lists into place, then the new
    ``results.json`` over the old one, removes the old run's files that the new one did not
    write, and removes ``running/``. Every step can be repeated, so a promotion cut short is
    finished by calling this again. Returns whether a run was promoted.
    """
    nb_dir = Path(nb_dir)
    run = nb_dir / RUNNING
    try:
        new = json.loads((run / "results.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(new, dict) or new.get("complete") is not True:
        return False
    try:
        old = _listed(json.loads((nb_dir / "results.json").read_text()))
    except (OSError, ValueError):
        old = set()
    for rel in sorted(_listed(new)):
        src, dst = inside(run, rel), inside(nb_dir, rel)
        if src is not None and dst is not None and src.exists():  # else moved already by a cut-short promotion
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    os.replace(run / "results.json", nb_dir / "results.json")
    for rel in sorted(old - _listed(new)):
        dst = inside(nb_dir, rel)
        if dst is not None:
            dst.unlink(missing_ok=True)
    shutil.rmtree(run, ignore_errors=True)
    return True


def remove_stale_parts(nb_dir: str | os.PathLike) -> list[Path]:
    """Delete the ``.<name>.*.part`` files that killed atomic writes left under ``nb_dir``."""
    gone = []
    for p in Path(nb_dir).rglob(".*.part"):
        if p.is_file():
            p.unlink(missing_ok=True)
            gone.append(p)
    return gone


def recover(nb_dir: str | os.PathLike) -> None:
    """Tidy a notebook's report folder before a run (or before the index reads it): finish the
    promotion of a complete run that was killed while being promoted, and remove stale ``.part``
    files. An incomplete ``running/`` (a failed or killed run) is left for inspection; the next
    Report replaces it."""
    nb_dir = Path(nb_dir)
    from .. import locks

    if nb_dir.is_dir() and locks.busy(nb_dir) is None:  # a run in progress owns its .part files
        promote(nb_dir)
        remove_stale_parts(nb_dir)
