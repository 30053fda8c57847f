"""Everything a notebook produces goes through a :class:`Report`.

``reports/<notebook>/`` receives each table as CSV, each figure as PNG under ``figures/`` and
``results.json`` (parameters, metrics, timings, hardware, library versions, the paper-vs-ours
comparisons and honest notes). Every file is written atomically, and ``results.json`` is
rewritten after each step, so a killed run leaves complete files of the steps it finished.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import config, plots


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` through a temporary sibling file and a rename, so that a reader (or a run
    killed mid-write) sees the old file or the new one, never half of one. The file gets the
    usual permissions (0666 less the umask), not the 0600 of ``mkstemp``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` of a UTF-8 text."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def hardware() -> dict:
    """What ran this: CPU, core count, GPUs and library versions (for results.json)."""
    import keras
    import sklearn
    import tensorflow as tf

    gpus = []
    for g in tf.config.list_physical_devices("GPU"):
        try:
            gpus.append(tf.config.experimental.get_device_details(g).get("device_name", g.name))
        except Exception:  # pragma: no cover - details are best effort
            gpus.append(g.name)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
    }


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, Path):
        return str(x)
    return x


class Report:
    """Collects one notebook run's outputs under ``reports/<notebook>/``."""

    def __init__(self, notebook: str, params: dict, root: str | os.PathLike | None = None, title: str = ""):
        self.notebook = notebook
        self._t0 = time.perf_counter()
        self.runs = None  # set by imgclf.papers.start: the notebook's run units (imgclf.runs.Runs)
        self.dir = config.reports_dir(notebook, root)
        self.fig_dir = self.dir / "figures"
        self.results: dict[str, Any] = {
            "notebook": notebook,
            "title": title,
            "profile": params.get("profile"),
            "seed": params.get("seed"),
            "params": params,
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "hardware": hardware(),
            "metrics": {},
            "timings": {},
            "comparisons": {},
            "headline": [],
            "notes": [],
            "comparable": True,
            "not_comparable_reason": None,
            "tables": [],
            "figures": [],
            "complete": False,
        }
        self.save()

    # -- outputs --------------------------------------------------------------------------
    def figure(self, fig, name: str) -> None:
        """Save ``fig`` as ``figures/<name>.png``; the notebook still displays it."""
        path = plots.save_figure(fig, self.fig_dir / f"{name}.png")
        rel = str(path.relative_to(self.dir))
        if rel not in self.results["figures"]:
            self.results["figures"].append(rel)
        self.save()

    def table(self, df: pd.DataFrame, name: str, float_format: str = "%.4f") -> pd.DataFrame:
        """Save ``df`` as ``<name>.csv``; returns it for display."""
        atomic_write_text(self.dir / f"{name}.csv", df.to_csv(float_format=float_format))
        if f"{name}.csv" not in self.results["tables"]:
            self.results["tables"].append(f"{name}.csv")
        self.save()
        return df

    def comparison(self, df: pd.DataFrame, name: str) -> pd.DataFrame:
        """A paper-vs-ours table (columns include ``paper`` and ``ours``): CSV plus results.json."""
        self.table(df, name)
        self.results["comparisons"][name] = json.loads(df.reset_index().to_json(orient="records"))
        self.save()
        return df

    def headline(self, what: str, paper: Any, ours: Any, note: str = "") -> None:
        """One line for the index and README: the paper's number beside ours."""
        self.results["headline"] = [h for h in self.results["headline"] if h["what"] != what]
        self.results["headline"].append({"what": what, "paper": paper, "ours": ours, "note": note})
        self.save()

    def metric(self, name: str, value: Any) -> None:
        self.results["metrics"][name] = value
        self.save()

    def timing(self, name: str, seconds: float) -> None:
        self.results["timings"][name] = round(float(seconds), 3)
        self.save()

    def note(self, text: str) -> None:
        """An honest note on where data or set-up differ from the paper (shown in the index)."""
        if text not in self.results["notes"]:
            self.results["notes"].append(text)
        self.save()

    def not_comparable(self, reason: str) -> None:
        """Flag the whole run as NOT comparable with the paper (shown loudly in the index)."""
        self.results["comparable"] = False
        self.results["not_comparable_reason"] = reason
        self.note(f"NOT COMPARABLE with the paper: {reason}")

    def finish(self) -> Path:
        """Mark the run complete and write results.json for the last time."""
        self.results["timings"].setdefault("notebook", round(time.perf_counter() - self._t0, 3))
        runs = self.runs
        if runs is not None and runs.total:
            self.results["runs"] = runs.summary()
            self.results["partial"] = {"done": runs.done, "total": runs.total} if runs.skipped else None
            self.note(f"run units: {runs.status()}" + (
                f"; the budget of {runs.budget_minutes:g} min was spent: run the notebook again to go on"
                if runs.skipped else ""))
        self.results["complete"] = True
        self.results["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        plt.close("all")
        return self.save()

    def save(self) -> Path:
        text = json.dumps(_jsonable(self.results), indent=2, sort_keys=False)
        return atomic_write_text(self.dir / "results.json", text + "\n")


def side_by_side(paper: pd.DataFrame, ours: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Long table ``(row, column) -> paper, ours, ours - paper`` over the cells both tables have."""
    p = paper.stack(list(range(paper.columns.nlevels)), future_stack=True).rename("paper")
    o = ours.stack(list(range(ours.columns.nlevels)), future_stack=True).rename("ours")
    df = pd.concat([p, o], axis=1, join="inner")
    df["ours - paper"] = df["ours"] - df["paper"]
    return df.round(digits)
