"""Run units: the expensive, independent pieces of a notebook, stored, reused, resumed, budgeted.

A *unit* is one training run, one evolution, one cross-validation fold: anything that costs
minutes and whose result depends only on its settings, its data and its seed. Its key is a
readable name plus a hash of exactly those (:func:`unit_key`), so a changed setting, data subset or
seed is a new unit and a repeated one is found again. A finished unit leaves

    reports/<notebook>/runs/<key>/result.json     what the unit returned, with seconds, hardware, date
    reports/<notebook>/runs/<key>/...             arrays and weights the unit saved (``Unit.path``)

``result.json`` is written last and atomically: a unit without it did not finish. An unfinished
unit keeps its ``checkpoint/`` folder (Keras ``BackupAndRestore`` state and an epoch log for
:func:`imgclf.train.fit`, the last generation of CMA-ES or PSO): the next run of the notebook
resumes it from there instead of starting over.

A *budget* (``budget_minutes``) stops new units from starting once it is spent, and stops a unit in
progress at its next checkpoint (epoch or generation, via :func:`check_budget`); the notebook still
finishes with what is done, its tables say "partial: 5 of 12 runs", and the index marks it
partial. Running the notebook again (``./run_all.sh --budget 8 --profile paper 03``) reuses every
finished unit and goes on with the next ones: a paper profile finishes in slices.

Usage in a paper module or notebook::

    res = runs.run("resnet18 sgd 0.01", lambda unit: train_one(..., checkpoint_dir=unit.checkpoint),
                   settings=dict(arch=..., lr=...), data=(x_train, y_train), seed=seed)
    if res is None:   # skipped: the budget is spent
        ...
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RESULT = "result.json"


class BudgetSpent(Exception):
    """Raised inside a unit (at an epoch or generation boundary, after its checkpoint is written)
    when the budget is spent: the unit stops, keeps its checkpoint and resumes on the next run."""


_ACTIVE: list[Runs] = []


def active() -> Runs | None:
    """The :class:`Runs` whose unit is running now (``None`` outside a unit)."""
    return _ACTIVE[-1] if _ACTIVE else None


def check_budget() -> None:
    """Call at a safe point of a long unit (its state saved): raises :class:`BudgetSpent` when the
    budget of the running unit's :class:`Runs` is spent. Does nothing outside a unit."""
    r = active()
    if r is not None and r.budget_spent():
        raise BudgetSpent(f"budget of {r.budget_minutes:g} min spent")


def fingerprint(*objs: Any) -> str:
    """A stable sha256 (hex, 16 characters) of arrays, numbers, strings, lists and dicts.

    Arrays are hashed with their dtype and shape, so the same values in another layout differ.
    """
    h = hashlib.sha256()

    def feed(o: Any) -> None:
        if isinstance(o, np.ndarray) or type(o).__module__.startswith(("tensorflow", "jax")):
            a = np.ascontiguousarray(np.asarray(o))
            h.update(f"nd{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        elif isinstance(o, Mapping):
            h.update(b"{")
            for k in sorted(o, key=str):
                feed(str(k))
                feed(o[k])
            h.update(b"}")
        elif isinstance(o, (list, tuple)):
            h.update(f"[{len(o)}".encode())
            for v in o:
                feed(v)
            h.update(b"]")
        else:
            h.update(f"{type(o).__name__}:{o!r};".encode())

    for o in objs:
        feed(o)
    return h.hexdigest()[:16]


def unit_key(name: str, settings: Mapping[str, Any], data: Any = (), seed: int | None = None) -> str:
    """``<slug of name>-<hash of settings, data fingerprint and seed>``: readable and stable."""
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", name).strip("-").lower()[:60] or "unit"
    return f"{slug}-{fingerprint(dict(settings), fingerprint(data), seed)[:12]}"


@dataclass
class Unit:
    """One unit's folder. ``checkpoint`` is where resumable state goes while it runs."""

    name: str
    key: str
    dir: Path

    @property
    def checkpoint(self) -> Path:
        return self.dir / "checkpoint"

    def path(self, filename: str) -> Path:
        """A file of this unit's outputs (weights, arrays), e.g. ``unit.path("model.weights.h5")``."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return self.dir / filename

    def save_arrays(self, filename: str = "arrays.npz", **arrays: np.ndarray) -> Path:
        """Save arrays atomically (read back with :meth:`load_arrays`; never pickled)."""
        from .reports import atomic_write

        return atomic_write(self.path(filename), lambda f: np.savez(f, **arrays))

    def load_arrays(self, filename: str = "arrays.npz") -> dict[str, np.ndarray]:
        with np.load(self.dir / filename, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


class Runs:
    """The run units of one notebook run, under ``root`` (``reports/<notebook>/runs``).

    ``reuse=False`` recomputes every unit (finished results are replaced). ``budget_minutes``
    (``None``: no limit) is counted from the creation of this object, i.e. the notebook's start.
    """

    def __init__(self, root: str | Path, *, reuse: bool = True, budget_minutes: float | None = None,
                 log: Callable[[str], None] = print):
        self.root = Path(root)
        self.reuse = reuse
        self.budget_minutes = budget_minutes
        self.log = log
        self._t0 = time.monotonic()
        self.ran: list[str] = []
        self.reused: list[str] = []
        self.skipped: list[str] = []  # not finished in this run: not started, or stopped mid-way
        self.stopped: list[str] = []  # of those, stopped mid-way at a checkpoint (resumed next time)

    # -- budget ----------------------------------------------------------------------------
    def elapsed_minutes(self) -> float:
        return (time.monotonic() - self._t0) / 60.0

    def budget_spent(self) -> bool:
        return self.budget_minutes is not None and self.elapsed_minutes() >= self.budget_minutes

    # -- units -----------------------------------------------------------------------------
    def unit(self, name: str, settings: Mapping[str, Any], data: Any = (), seed: int | None = None) -> Unit:
        key = unit_key(name, settings, data, seed)
        return Unit(name, key, self.root / key)

    def finished(self, unit: Unit) -> dict | None:
        """The stored record of a finished unit, or ``None``."""
        p = unit.dir / RESULT
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError):
            return None  # a damaged record is recomputed

    def run(self, name: str, fn: Callable[[Unit], Any], *, settings: Mapping[str, Any], data: Any = (),
            seed: int | None = None) -> Any:
        """Run ``fn(unit)`` unless the unit has finished before (then return its stored result).

        ``fn`` returns something JSON can hold (dicts, lists, numbers, strings; NumPy scalars and
        arrays are converted). Returns ``None``, without running, when the budget is spent.
        """
        from .reports import _jsonable, atomic_write_text, hardware

        unit = self.unit(name, settings, data, seed)
        if self.reuse:
            rec = self.finished(unit)
            if rec is not None:
                self.reused.append(name)
                self.log(f"[runs] reused {name} ({unit.key}, finished {rec.get('finished', '?')})")
                return rec["result"]
        if self.budget_spent():
            self.skipped.append(name)
            self.log(f"[runs] budget of {self.budget_minutes:g} min spent: {name} not started")
            return None
        if not self.reuse and unit.dir.exists():
            shutil.rmtree(unit.dir)
        resumed = unit.checkpoint.exists()
        self.log(f"[runs] {'resuming' if resumed else 'running'} {name} ({unit.key})")
        unit.dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        _ACTIVE.append(self)
        try:
            result = _jsonable(fn(unit))
        except BudgetSpent:
            self.skipped.append(name)
            self.stopped.append(name)
            self.log(f"[runs] budget of {self.budget_minutes:g} min spent: {name} stopped at a checkpoint; "
                     "run again to resume it")
            return None
        finally:
            _ACTIVE.pop()
        rec = {
            "name": name, "key": unit.key, "settings": _jsonable(dict(settings)), "seed": seed,
            "seconds": round(time.perf_counter() - t0, 3), "resumed": resumed,
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "hardware": hardware(), "result": result,
        }
        atomic_write_text(unit.dir / RESULT, json.dumps(rec, indent=1) + "\n")
        shutil.rmtree(unit.checkpoint, ignore_errors=True)
        self.ran.append(name)
        return result

    # -- summary ---------------------------------------------------------------------------
    @property
    def total(self) -> int:
        return len(self.ran) + len(self.reused) + len(self.skipped)

    @property
    def done(self) -> int:
        return len(self.ran) + len(self.reused)

    def summary(self) -> dict:
        """Counts for results.json; ``partial`` is true when a unit was skipped."""
        return {"ran": len(self.ran), "reused": len(self.reused), "skipped": list(self.skipped),
                "stopped_mid_unit": list(self.stopped),
                "done": self.done, "total": self.total, "partial": bool(self.skipped),
                "budget_minutes": self.budget_minutes, "reuse": self.reuse}

    def status(self) -> str:
        """``"complete: 12 of 12 runs (5 reused)"`` or ``"partial: 5 of 12 runs"``."""
        word = "partial" if self.skipped else "complete"
        extra = f" ({len(self.reused)} reused)" if self.reused else ""
        return f"{word}: {self.done} of {self.total} runs{extra}"
