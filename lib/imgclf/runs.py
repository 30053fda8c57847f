"""Run units: the expensive, independent pieces of a notebook, stored, reused, resumed, budgeted.

A *unit* is one call of a pipeline function (one training run, one evolution, one fold), made
through :meth:`Runs.cached`::

    res = runs.cached(pipeline.fit_cnn, cfg=cfg, x=x_tr, y=y_tr, seed=1)
    if res is None:   # the budget is spent: the unit did not start, or stopped at a checkpoint
        ...

Its key is ``<readable name>-<call hash>-<code hash>``:

- the *call hash* fingerprints the function's qualified name and every argument (arrays by content;
  a config dataclass by the fields that change a result, see :func:`imgclf.config.key_fields`);
- the *code hash* fingerprints the source of the function's module and of every ``imgclf`` module
  it imports, directly or not (:func:`code_fingerprint`; comments and docstrings do not count,
  reporting and plotting modules do not count), so a change to the code a unit runs recomputes that
  unit and no other.

A finished unit leaves ``reports/<notebook>/runs/<key>/result.json`` (what the function returned,
with its seconds, hardware, date and the git commit it was computed at) beside the arrays and
weights it saved (:func:`current`). ``result.json`` is written last and atomically: a unit without
it did not finish, and a record that is damaged or belongs to another key is recomputed with a
warning that names it. An unfinished unit keeps its ``checkpoint/`` folder (the last two epochs' training state of
:func:`imgclf.train.fit`, the last generation of CMA-ES or PSO): the next run resumes it there; a
damaged checkpoint file is named and the state before it, or a fresh start of that unit, is used.
Two processes asked for the same unit do not both compute it: the second waits for the first
(a lock file beside the unit, released by the kernel if its holder dies) and then reuses its record.

A *budget* (``budget_minutes``) stops new units from starting once it is spent, and stops a unit in
progress at its next checkpoint (:func:`check_budget`); the notebook still finishes with what is
done and says "partial: 5 of 12 runs". Running it again goes on: a paper profile finishes in slices.

``reuse="any-code"`` keeps units computed by older code on purpose (an expensive unit whose code
changed in a way you know does not matter); they are listed as such in ``results.json``.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as _dt
import fcntl
import hashlib
import importlib.util
import inspect
import json
import logging
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write, atomic_write_json, jsonable

log = logging.getLogger("imgclf.runs")

RESULT = "result.json"

NOT_CODE = ("imgclf.runs", "imgclf.reports", "imgclf.plots", "imgclf.render", "imgclf.browser",
            "imgclf.stats", "imgclf.files", "imgclf.gpucheck", "imgclf.logs", "imgclf.provenance_env")
"""Modules that record, show or summarise results but never change what a unit computes: they are
left out of the code hash, so a new plot or report layout does not retrain anything."""


class BudgetSpent(Exception):
    """Raised inside a unit (at an epoch or generation boundary, after its checkpoint is written)
    when the budget is spent: the unit stops, keeps its checkpoint and resumes on the next run."""


class PartialRun(BudgetSpent):
    """Raised by a notebook whose later cells need units a budget left for the next run
    (:meth:`imgclf.reports.Report.stop_if_partial`): its report is finished as partial first, and
    ``run_all.sh`` counts the run as a partial one, not a failure."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this line instead of a traceback
        return [f"{type(self).__name__}: {self}"]


class DamagedRecord(Warning):
    """A stored unit record that is unreadable or belongs to another key (it is recomputed)."""


class DamagedUnitFile(OSError):
    """A file a finished unit kept (arrays, weights) that cannot be read; the message names it."""


_ACTIVE: list[tuple["Runs", "Unit"]] = []


def active() -> Runs | None:
    """The :class:`Runs` whose unit is running now (``None`` outside a unit)."""
    return _ACTIVE[-1][0] if _ACTIVE else None


def current() -> Unit | None:
    """The :class:`Unit` running now: its ``checkpoint`` folder and ``path(name)`` for the files it
    keeps (weights, arrays). ``None`` outside a unit (a direct call, e.g. in a test)."""
    return _ACTIVE[-1][1] if _ACTIVE else None


def check_budget() -> None:
    """Call at a safe point of a long unit (its state saved): raises :class:`BudgetSpent` when the
    budget of the running unit's :class:`Runs` is spent. Does nothing outside a unit."""
    r = active()
    if r is not None and r.budget_spent():
        raise BudgetSpent(f"budget of {r.budget_minutes:g} min spent")


# ----------------------------------------------------------------------------------------------
# Fingerprints: of values (the call) and of source code (the code a unit runs)
# ----------------------------------------------------------------------------------------------
def fingerprint(*objs: Any) -> str:
    """A stable sha256 (hex, 16 characters) of arrays, numbers, strings, lists, dicts, dataclasses
    and functions.

    Arrays are hashed by content with their dtype and shape. A dataclass is hashed by its class name
    and its fields, less those whose metadata says ``key=False`` (settings that change no result,
    such as how many images a figure shows). A function is hashed by its qualified name.
    """
    h = hashlib.sha256()

    def feed(o: Any) -> None:
        if isinstance(o, np.ndarray) or type(o).__module__.startswith(("tensorflow", "jax", "torch")):
            a = np.ascontiguousarray(np.asarray(o))
            h.update(f"nd{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        elif dataclasses.is_dataclass(o) and not isinstance(o, type):
            h.update(f"dc:{type(o).__qualname__}".encode())
            feed({f.name: getattr(o, f.name) for f in dataclasses.fields(o) if f.metadata.get("key", True)})
        elif isinstance(o, Mapping):
            h.update(b"{")
            for k in sorted(o, key=str):
                feed(str(k))
                feed(o[k])
            h.update(b"}")
        elif isinstance(o, (list, tuple)):
            h.update(f"[{len(o)}".encode())  # a list and a tuple of the same values are one call
            for v in o:
                feed(v)
            h.update(b"]")
        elif isinstance(o, Path):
            feed(str(o))
        elif callable(o) and hasattr(o, "__qualname__"):
            h.update(f"fn:{o.__module__}.{o.__qualname__};".encode())
        elif isinstance(o, (np.integer, np.floating, np.bool_)):
            feed(o.item())
        else:
            h.update(f"{type(o).__name__}:{o!r};".encode())

    for o in objs:
        feed(o)
    return h.hexdigest()[:16]


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _module_file(name: str) -> Path | None:
    mod = sys.modules.get(name)
    f = getattr(mod, "__file__", None) if mod is not None else None
    if f is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        f = spec.origin if spec is not None else None
    return Path(f) if f and f.endswith(".py") else None


def _imports(name: str, path: Path, tree: ast.AST) -> set[str]:
    """The ``imgclf`` modules that module ``name`` (file ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)  # "from .. import train" names a module
    return {m for m in found if m.split(".")[0] == "imgclf" and _module_file(m) is not None}


_CODE_CACHE: dict[tuple, tuple[str, tuple[str, ...]]] = {}


def code_modules(module: str) -> list[str]:
    """``module`` and every ``imgclf`` module it imports, directly or not, less :data:`NOT_CODE`."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or name.startswith(NOT_CODE):
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen.add(name)
        tree = ast.parse(path.read_bytes())
        todo.extend(_imports(name, path, tree))
        for parent in range(name.count(".")):  # importing a.b.c runs a/__init__ and a/b/__init__
            todo.append(".".join(name.split(".")[: parent + 1]))
    return sorted(seen)


def code_fingerprint(fn: Callable) -> str:
    """The sha256 (12 hex) of the code ``fn`` runs: the syntax trees (comments and docstrings left
    out) of its module and of every ``imgclf`` module that module imports, directly or not
    (:func:`code_modules`). Modules outside ``imgclf`` count by their version: Keras, NumPy and the
    others are recorded with each unit, not hashed."""
    fn = inspect.unwrap(fn)
    module = fn.__module__
    mods = code_modules(module)
    stamp = tuple((m, os.stat(p).st_mtime_ns, os.stat(p).st_size) for m in mods if (p := _module_file(m)))
    hit = _CODE_CACHE.get((module, stamp))
    if hit is not None:
        return hit[0]
    h = hashlib.sha256()
    for m in mods:
        tree = _strip_docstrings(ast.parse(_module_file(m).read_bytes()))
        h.update(m.encode() + b"\0" + ast.dump(tree).encode() + b"\0")
    fp = h.hexdigest()[:12]
    _CODE_CACHE[(module, stamp)] = (fp, tuple(mods))
    return fp


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", name).strip("-").lower()[:60] or "unit"


def call_key(fn: Callable, kwargs: Mapping[str, Any], name: str | None = None) -> str:
    """``<slug of name or fn>-<call hash>-<code hash>`` for ``fn(**kwargs)``."""
    fn = inspect.unwrap(fn)
    qual = f"{fn.__module__}.{fn.__qualname__}"
    label = name or fn.__qualname__
    return f"{_slug(label)}-{fingerprint(qual, dict(kwargs))[:10]}-{code_fingerprint(fn)[:8]}"


def git_commit(repo: str | os.PathLike | None = None) -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout the code runs from (for
    an installed package: the commit pip recorded, see :func:`imgclf.provenance_env.code_version`)."""
    import subprocess

    from . import config

    if repo is None and config.SOURCE_ROOT is None:  # site-packages: git would name another repo
        from .provenance_env import code_version

        v = code_version()
        return {"commit": v["commit"], "dirty": v["dirty"]}
    root = Path(repo) if repo is not None else config.SOURCE_ROOT

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        # results/ is what runs publish (a run published while another computes must not mark it dirty)
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(changed)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


# ----------------------------------------------------------------------------------------------
# Units
# ----------------------------------------------------------------------------------------------
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
        return atomic_write(self.path(filename), lambda f: np.savez(f, **arrays))

    def load_arrays(self, filename: str = "arrays.npz") -> dict[str, np.ndarray]:
        """The arrays :meth:`save_arrays` kept. A file that cannot be read raises
        :class:`DamagedUnitFile` naming it and the folder to delete (the unit is then recomputed)."""
        path = self.dir / filename
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise
        except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, EOFError of a cut file
            raise DamagedUnitFile(f"run unit file {path} is damaged ({type(e).__name__}: {e}); delete the folder "
                                  f"{self.dir} to compute the unit {self.name} again") from e


class _UnitLock:
    """An exclusive ``flock`` on ``<unit>.lock`` beside the unit's folder: a second process asking
    for the same unit waits here; the kernel drops the lock when its holder dies."""

    def __init__(self, path: Path, log: Callable[[str], None]):
        self.path, self.log, self.fd = path, log, None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 200, 0).decode(errors="replace").strip()
            self.log(f"[runs] waiting for {self.path.stem}: another process computes it ({holder})")
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        import socket

        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                           f"{_dt.datetime.now().isoformat(timespec='seconds')}".encode(), 0)
        return self

    def __exit__(self, *exc):
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


class Runs:
    """The run units of one notebook run, under ``root`` (``reports/<notebook>/runs``).

    ``reuse``: ``True`` reuses finished units of the same call and code; ``False`` recomputes every
    unit; ``"any-code"`` also reuses a finished unit of the same call computed by other code (kept
    on purpose; listed in :meth:`summary`). ``budget_minutes`` (``None``: no limit) counts from the
    creation of this object, i.e. the notebook's start.

    ``only`` (``None``: every unit) names the one unit to compute, by key or by key without its
    code hash (``<name>-<call hash>``, so the same call made by changed code still counts): every
    other unit is skipped as if the budget were spent. ``./run_all.sh reproduce`` recomputes one
    published unit this way.
    """

    def __init__(self, root: str | os.PathLike, *, reuse: bool | str = True, budget_minutes: float | None = None,
                 log: Callable[[str], None] | None = None, only: str | None = None):
        if reuse not in (True, False, "any-code"):
            raise ValueError(f"reuse must be True, False or 'any-code', got {reuse!r}")
        self.root = Path(root)
        self.reuse = reuse
        self.budget_minutes = budget_minutes
        self.only = only
        self.log = log or log_info
        self._t0 = time.monotonic()
        self.ran: list[str] = []
        self.reused: list[str] = []
        self.reused_other_code: list[str] = []
        self.skipped: list[str] = []  # not finished in this run: not started, or stopped mid-way
        self.stopped: list[str] = []  # of those, stopped mid-way at a checkpoint (resumed next time)
        self.commits: set[str] = set()  # the commits the used units were computed at
        self.units: list[dict] = []  # every unit this run used: name, key, seconds, commit, reused

    # -- budget ----------------------------------------------------------------------------
    def elapsed_minutes(self) -> float:
        return (time.monotonic() - self._t0) / 60.0

    def budget_spent(self) -> bool:
        return self.budget_minutes is not None and self.elapsed_minutes() >= self.budget_minutes

    # -- records -----------------------------------------------------------------------------
    def finished(self, unit: Unit) -> dict | None:
        """The stored record of a finished unit, or ``None``. A record that cannot be read or does
        not belong to ``unit.key`` is not reused: a :class:`DamagedRecord` warning names it."""
        p = unit.dir / RESULT
        if not p.is_file():
            return None
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError, UnicodeDecodeError) as e:
            warnings.warn(f"run unit record {p} is damaged ({e}); recomputing {unit.name}", DamagedRecord, stacklevel=3)
            return None
        if not isinstance(rec, dict) or rec.get("key") != unit.key or "result" not in rec:
            warnings.warn(f"run unit record {p} does not belong to key {unit.key}; recomputing {unit.name}",
                          DamagedRecord, stacklevel=3)
            return None
        return rec

    def find(self, fn: Callable, /, *, name: str | None = None, **kwargs: Any) -> Unit | None:
        """The finished unit of ``fn(**kwargs)`` (same key as :meth:`cached`), e.g. to load the
        weights it kept; ``None`` when it has not finished."""
        unit = Unit(name or fn.__qualname__, call_key(fn, kwargs, name), self.root)
        unit.dir = self.root / unit.key
        if self.finished(unit) is not None:
            return unit
        if self.reuse == "any-code":  # the unit cached() reused: the same call computed by other code
            for other in self._other_code(unit):
                old = Unit(unit.name, other.name, other)
                if self.finished(old) is not None:
                    return old
        return None

    def _other_code(self, unit: Unit) -> list[Path]:
        """Folders of the same call computed by other code (``<name>-<call>-<other code hash>``)."""
        stem = unit.key.rsplit("-", 1)[0]
        return [p for p in self.root.glob(f"{stem}-*") if p.is_dir() and p.name != unit.key
                and p.name.rsplit("-", 1)[0] == stem]

    # -- the entry point -------------------------------------------------------------------
    def cached(self, fn: Callable, /, *, name: str | None = None, **kwargs: Any) -> Any:
        """``fn(**kwargs)`` as a run unit: computed once, stored, reused while neither the call nor
        the code it runs changes (:func:`call_key`).

        ``name`` is the readable label (default: the function's name), shown in logs and at the
        front of the key. ``fn`` returns what JSON can hold (dicts, lists, numbers, strings; NumPy
        values are converted); inside it, :func:`current` gives the unit's folder. Returns the
        result, or ``None`` without running when the budget is spent.
        """
        label = name or fn.__qualname__
        unit = Unit(label, call_key(fn, kwargs, name), self.root)
        unit.dir = self.root / unit.key
        return self._run(unit, lambda: fn(**kwargs), settings={k: _describe(v) for k, v in kwargs.items()},
                         code=True)

    def _run(self, unit: Unit, call: Callable[[], Any], *, settings: Mapping[str, Any], code: bool) -> Any:
        name = unit.name
        if self.only is not None and self.only not in (unit.key, unit.key.rsplit("-", 1)[0]):
            self.skipped.append(name)
            return None
        with _UnitLock(self.root / f"{unit.key}.lock", self.log):
            if self.reuse:
                rec = self.finished(unit)
                if rec is None and self.reuse == "any-code":
                    for other in self._other_code(unit):
                        old = Unit(unit.name, other.name, other)
                        if (rec := self.finished(old)) is not None:
                            unit.dir, unit.key = other, other.name
                            self.reused_other_code.append(name)
                            break
                if rec is not None:
                    self.reused.append(name)
                    self._used(unit, rec, reused=True)
                    if rec.get("commit"):
                        self.commits.add(rec["commit"])
                    self.log(f"[runs] reused {name} ({unit.key}, finished {rec.get('finished', '?')})")
                    return rec["result"]
            if self.budget_spent():
                self.skipped.append(name)
                self.log(f"[runs] budget of {self.budget_minutes:g} min spent: {name} not started")
                return None
            if not self.reuse and unit.dir.exists():
                shutil.rmtree(unit.dir)
            if code and self.reuse != "any-code":
                for old in self._other_code(unit):  # computed by code that has changed since
                    self.log(f"[runs] code changed since {old.name}: replacing it with {unit.key}")
                    shutil.rmtree(old, ignore_errors=True)
            resumed = unit.checkpoint.exists()
            self.log(f"[runs] {'resuming' if resumed else 'running'} {name} ({unit.key})")
            unit.dir.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            _ACTIVE.append((self, unit))
            try:
                result = jsonable(call())
            except BudgetSpent:
                self.skipped.append(name)
                self.stopped.append(name)
                self.log(f"[runs] budget of {self.budget_minutes:g} min spent: {name} stopped at a checkpoint; "
                         "run again to resume it")
                return None
            finally:
                _ACTIVE.pop()
            from .reports import hardware  # late: reports imports this module

            git = git_commit()
            rec = {
                "name": name, "key": unit.key, "settings": jsonable(dict(settings)),
                "seconds": round(time.perf_counter() - t0, 3), "resumed": resumed,
                "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "commit": git["commit"], "dirty": git["dirty"], "hardware": hardware(), "result": result,
            }
            if git["commit"]:
                self.commits.add(git["commit"])
            atomic_write_json(unit.dir / RESULT, rec)
            shutil.rmtree(unit.checkpoint, ignore_errors=True)
            self.ran.append(name)
            self._used(unit, rec, reused=False)
            return result

    def _used(self, unit: Unit, rec: dict, *, reused: bool) -> None:
        self.units.append({"name": unit.name, "key": unit.key, "seconds": rec.get("seconds"),
                           "commit": rec.get("commit"), "dirty": rec.get("dirty"), "reused": reused})

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
                "stopped_mid_unit": list(self.stopped), "reused_other_code": list(self.reused_other_code),
                "commits": sorted(self.commits),
                "done": self.done, "total": self.total, "partial": bool(self.skipped),
                "budget_minutes": self.budget_minutes, "reuse": self.reuse, "only": self.only,
                "units": list(self.units)}

    def status(self) -> str:
        """``"complete: 12 of 12 runs (5 reused)"`` or ``"partial: 5 of 12 runs"``."""
        word = "partial" if self.skipped else "complete"
        extra = f" ({len(self.reused)} reused)" if self.reused else ""
        return f"{word}: {self.done} of {self.total} runs{extra}"


def log_info(msg: str) -> None:
    """The default log of :class:`Runs`: the ``imgclf.runs`` logger at INFO (set its level to
    WARNING to silence the ``[runs]`` lines)."""
    log.info(msg)


def _describe(v: Any) -> Any:
    """A short, readable record of one argument (arrays by shape and hash, configs by their fields)."""
    if isinstance(v, np.ndarray):
        return {"array": list(v.shape), "dtype": v.dtype.str, "sha": fingerprint(v)}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _describe(getattr(v, f.name)) for f in dataclasses.fields(v) if f.metadata.get("key", True)}
    if isinstance(v, (list, tuple)) and len(v) > 20:
        return {"list": len(v), "sha": fingerprint(v)}
    if isinstance(v, Mapping):
        return {str(k): _describe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_describe(x) for x in v]
    if callable(v) and hasattr(v, "__qualname__"):
        return f"{v.__module__}.{v.__qualname__}"
    return jsonable(v)


# ----------------------------------------------------------------------------------------------
# Generation logs: the checkpoint of an optimiser without gradients (CMA-ES, PSO), per generation
# ----------------------------------------------------------------------------------------------
GenerationHook = Callable[[int, int, dict], None]
"""``on_generation(layer, generation, state)``: called after each generation is recorded (and
checkpointed). An exception raised here stops the run as a kill would; the checkpoint holds every
generation so far."""


def digest(a: np.ndarray) -> str:
    """sha256 (16 hex) of an array's float64 values: which candidates a generation scored."""
    return hashlib.sha256(np.ascontiguousarray(a, np.float64).tobytes()).hexdigest()[:16]


class ElapsedClock:
    """Seconds since a run's start, continued across a resume (the stored elapsed time + this process')."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def continue_from(self, elapsed: float) -> None:
        self.t0 = time.perf_counter() - elapsed


class GenerationLog:
    """The checkpoint of one optimiser run: per generation its fitness values, a digest of its
    candidates and its history row, in one JSON file rewritten atomically after every generation
    (JSON floats round-trip exactly; nothing is pickled).

    Resume is a *replay*: the optimiser is rebuilt from its seed and asked again for each recorded
    generation, told the recorded fitness (nothing is evaluated), which reproduces its state
    exactly (CMA-ES's mean, step size, covariance and random stream; PSO's swarm); the digest
    checks that the replayed candidates are the recorded ones. Evaluation goes on from the first
    generation not recorded. ``path=None``: nothing is stored.
    """

    def __init__(self, path: Path | None, settings: dict):
        self.path, self.settings = path, jsonable(settings)
        self.records: list[dict] = []
        if path is not None and path.is_file():
            # a damaged or foreign checkpoint never blocks the run: it is named and the run starts over
            try:
                stored = json.loads(path.read_text())
                records = stored["generations"]
                if not isinstance(records, list):
                    raise ValueError("no list of generations")
            except (OSError, ValueError, UnicodeDecodeError, TypeError, KeyError) as e:
                warnings.warn(f"checkpoint {path} is damaged ({type(e).__name__}: {e}); this run starts over",
                              DamagedRecord, stacklevel=2)
            else:
                if stored.get("settings") != self.settings:
                    warnings.warn(f"checkpoint {path} was written with other settings ({stored.get('settings')}); "
                                  "this run starts over", DamagedRecord, stacklevel=2)
                else:
                    self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def replay(self, gen: int, candidates: np.ndarray) -> np.ndarray | None:
        """The recorded fitness of generation ``gen`` (checking its candidates), or ``None``."""
        if gen >= len(self.records):
            return None
        rec = self.records[gen]
        try:
            same = rec["digest"] == digest(candidates) and len(rec["fitness"]) == len(candidates)
        except (TypeError, KeyError):
            same = False
        if not same:  # the state up to gen - 1 was replayed exactly: go on from there
            warnings.warn(f"checkpoint {self.path}: generation {gen} does not match its record (damaged, or the "
                          f"optimiser, its seed or its start changed); resuming from generation {gen}",
                          DamagedRecord, stacklevel=2)
            self.records = self.records[:gen]
            return None
        return np.asarray(rec["fitness"], np.float64)

    def row(self, gen: int) -> dict:
        return dict(self.records[gen]["row"])

    def add(self, candidates: np.ndarray, fits: np.ndarray, row: dict) -> None:
        self.records.append({"fitness": [float(f) for f in fits], "digest": digest(candidates), "row": row})
        if self.path is not None:
            atomic_write_json(self.path, {"settings": self.settings, "generations": self.records})


class GenerationLogger:
    """One history row per generation (recorded in a :class:`GenerationLog`), a progress line
    every ``every`` generations."""

    def __init__(self, method: str, layer: int, generations: int, clock: ElapsedClock, every: int | None,
                 verbose: bool, record: GenerationLog):
        self.method, self.layer, self.generations, self.clock, self.verbose = method, layer, generations, clock, verbose
        self.every = every or max(1, generations // 10)
        self.record = record
        self.rows: list[dict] = []
        self.best_so_far = -np.inf
        self.resumed_at: int | None = None

    def fitness(self, gen: int, candidates: np.ndarray, evaluate: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Generation ``gen``'s fitness: recorded (replay) or evaluated now."""
        fits = self.record.replay(gen, candidates)
        if fits is not None:
            return fits
        if self.resumed_at is None:
            self.resumed_at = gen
            if gen > 0:
                self.clock.continue_from(self.rows[-1]["elapsed"])
                if self.verbose:
                    print(f"{self.method} layer {self.layer}: resumed from the checkpoint at generation {gen}",
                          file=sys.stdout, flush=True)
        return np.asarray(evaluate(candidates), np.float64)

    def log(self, gen: int, candidates: np.ndarray, fits: np.ndarray, evaluations: int, **extra: Any) -> None:
        self.best_so_far = max(self.best_so_far, float(np.max(fits)))
        if gen < len(self.record):
            row = self.record.row(gen)
        else:
            row = dict(method=self.method, layer=self.layer, generation=gen, evaluations=evaluations,
                       best=float(np.max(fits)), mean=float(np.mean(fits)), best_so_far=self.best_so_far,
                       elapsed=self.clock.elapsed(), **extra)
            self.record.add(candidates, fits, row)
        self.rows.append(row)
        if self.verbose and gen >= len(self.record) - 1 and (gen % self.every == 0 or gen == self.generations):
            print(f"{self.method} layer {self.layer} gen {gen:4d}/{self.generations}  best {row['best']:.4f}  "
                  f"mean {row['mean']:.4f}  best so far {self.best_so_far:.4f}  elapsed {row['elapsed']:7.1f}s",
                  file=sys.stdout, flush=True)
