"""Everything a notebook produces goes through a :class:`Report`.

``reports/<notebook>/`` receives each table as CSV, each figure as PNG under ``figures/`` and
``results.json`` (parameters, metrics, timings, hardware, thread settings, library versions, the
paper-vs-ours comparisons and honest notes). Every file is written atomically.

Life cycle: ``reports/<notebook>/results.json`` and the tables and figures it lists are always the
last COMPLETE run. A run writes into ``reports/<notebook>/running/`` (its ``results.json`` is
rewritten after each step, ``complete: false``); :meth:`Report.finish` marks it complete there (the
commit point) and then promotes it: its files replace the old ones, its ``results.json`` replaces
the old one, files of the old run that the new one did not write are removed, ``running/`` goes.
A run that fails or is killed leaves the last complete results untouched; a run killed during the
promotion is rolled forward by the next :class:`Report` (or by :func:`recover`). Stale ``.*.part``
files of killed atomic writes are removed at the start of the next run.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
import platform
import re
import shutil
import subprocess
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
from .files import atomic_write, atomic_write_text  # noqa: F401  (re-exported)
from .files import jsonable as _jsonable


THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
              "TF_NUM_INTEROP_THREADS", "TF_ENABLE_ONEDNN_OPTS", "TF_DETERMINISTIC_OPS", "TF_CUDNN_DETERMINISTIC",
              "CUDA_VISIBLE_DEVICES", "PYTHONHASHSEED")
"""Environment variables that change TensorFlow's threads or numerics (recorded, set or not)."""


def threads() -> dict:
    """The settings that decide whether a rerun gives the same numbers bit for bit.

    TensorFlow's intra-op and inter-op thread pools (``0`` = TensorFlow's default: as many as the
    CPUs it may use), the CPUs this process may use (affinity, which containers and ``taskset``
    limit) beside ``os.cpu_count()``, whether op determinism is on, and :data:`THREAD_ENV` (None =
    not set). The same seed gives the same numbers only with the same values here, the same
    library versions and the same kind of device.
    """
    import tensorflow as tf

    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        usable = os.cpu_count()
    try:  # not in tf.config's public API (only enable_op_determinism is)
        from tensorflow.python.framework.config import is_op_determinism_enabled

        determinism = bool(is_op_determinism_enabled())
    except ImportError:  # pragma: no cover - older or newer TensorFlow
        determinism = None
    return {
        "tf_intra_op_parallelism": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op_parallelism": tf.config.threading.get_inter_op_parallelism_threads(),
        "cpus_usable": usable,
        "cpu_count": os.cpu_count(),
        "op_determinism": determinism,
        "env": {k: os.environ.get(k) for k in THREAD_ENV},
    }


def hardware() -> dict:
    """What ran this: CPU, core count, thread settings (:func:`threads`), GPUs and library versions."""
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
        "threads": threads(),
        "gpus": gpus,
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
    }


def git_provenance(repo: str | os.PathLike | None = None) -> dict:
    """The commit the run's code came from: ``{"commit": sha, "dirty": bool}`` (``dirty``: tracked
    files differ from the commit). Best effort: ``{"commit": None, ...}`` outside a git checkout."""
    repo = Path(repo) if repo is not None else config.REPO_ROOT

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=20,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    try:
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return {"commit": commit, "dirty": dirty}


_PAPER_REF = re.compile(r"^(fig|figs|figure|table|tables)(\d+)((?:_\d+)*)(?:_|$)", re.IGNORECASE)


def paper_reference(name: str) -> str | None:
    """The paper figure or table a figure's name says it regenerates: ``fig8_accuracy`` ->
    ``Figure 8``, ``fig4_5_mobilenet_cv_curves`` -> ``Figures 4-5``, ``table1_paper_vs_ours`` ->
    ``Table 1``; None when the name carries no number (a figure of our own)."""
    m = _PAPER_REF.match(name)
    if not m:
        return None
    kind = "Figure" if m.group(1).lower().startswith("fig") else "Table"
    nums = [m.group(2), *[n for n in m.group(3).split("_") if n]]
    if len(nums) == 1:
        return f"{kind} {nums[0]}"
    return f"{kind}s {nums[0]}\u2013{nums[-1]}" if len(nums) == 2 else f"{kind}s {', '.join(nums)}"


def default_caption(name: str) -> str:
    """A caption derived from a figure's name (see :func:`paper_reference`): ``fig8_accuracy`` ->
    ``"Figure 8 of the paper, regenerated: accuracy"``."""
    ref = paper_reference(name)
    words = (_PAPER_REF.sub("", name) if ref else name).replace("_", " ").strip()
    if ref:
        return f"{ref} of the paper, regenerated" + (f": {words}" if words else "")
    return f"Our figure, not a numbered figure of the paper: {words}"


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (JupyterLab, papermill), where outputs are displayed."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _display(bundle: dict, metadata: dict | None = None) -> None:
    from IPython.display import display

    display(bundle, raw=True, metadata=metadata or {})


DELTA = "ours - paper"


def with_delta(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with an ``ours - paper`` column when it has numeric ``paper`` and ``ours`` columns and
    no delta column yet (non-numeric cells give an empty delta)."""
    if DELTA in df.columns or not {"paper", "ours"} <= set(df.columns):
        return df
    delta = pd.to_numeric(df["ours"], errors="coerce") - pd.to_numeric(df["paper"], errors="coerce")
    if delta.isna().all():
        return df
    out = df.copy()
    out.insert(list(out.columns).index("ours") + 1, DELTA, delta)
    return out


def delta_style(delta: Any, paper: Any) -> str:
    """CSS for one delta cell: blue where ours is above the paper, red where below; the stronger the
    colour, the larger the difference relative to the paper's value (full at 20 %)."""
    try:
        d, p = float(delta), float(paper)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(d) or d == 0:
        return ""
    rel = abs(d) / abs(p) if math.isfinite(p) and p != 0 else 1.0
    alpha = 0.12 + 0.68 * min(1.0, rel / 0.2)
    rgb = "33,102,172" if d > 0 else "178,24,43"
    ink = "color:#fff;" if alpha > 0.5 else ""
    return f"background-color:rgba({rgb},{alpha:.2f});{ink}"


def _number(v: Any) -> str:
    """A table cell: integers (and integral floats) with thousands separators, else 4 digits."""
    if v is None or isinstance(v, bool):
        return "\u2013" if v is None else str(v)
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return "\u2013"
        if abs(f) >= 1e4 or (f == int(f) and abs(f) >= 100):
            return f"{f:,.0f}"
        return f"{f:.4g}"
    return str(v)


def _signed(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "\u2013"
    if not math.isfinite(f):
        return "\u2013"
    return f"{f:+,.0f}" if abs(f) >= 1e4 else f"{f:+.4g}"


def styled_comparison(df: pd.DataFrame, caption: str = ""):
    """A pandas ``Styler`` of a paper-vs-ours table: numbers formatted, the delta column coloured by
    sign and size (:func:`delta_style`)."""
    df = with_delta(df)
    sty = df.style.format(_number, na_rep="\u2013")
    if DELTA in df.columns:
        sty = sty.format(_signed, subset=[DELTA], na_rep="\u2013")
        if "paper" in df.columns:
            colours = pd.DataFrame("", index=df.index, columns=df.columns)
            colours[DELTA] = [delta_style(d, p) for d, p in zip(df[DELTA], df["paper"])]
            sty = sty.apply(lambda _: colours, axis=None)
    key = ("ours \u2212 paper: <span style='background:rgba(33,102,172,.6);color:#fff;padding:0 3px'>ours higher</span> "
           "<span style='background:rgba(178,24,43,.6);color:#fff;padding:0 3px'>ours lower</span>, "
           "stronger colour = larger difference relative to the paper")
    cap = f"<b>{html.escape(caption)}</b><br>" if caption else ""
    return sty.set_caption(f"{cap}<small>{key}</small>").set_table_attributes('class="imgclf-comparison"')


def expand_summaries(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Columns holding :class:`imgclf.stats.Summary` cells as numbers: the mean in the column
    itself, ``<column> sd`` and ``<column> n`` beside it. Returns ``(numbers, shown)``; ``shown``
    has the "mean ± sd (n)" text for display (``None`` when there was no summary cell)."""
    from .stats import Summary

    cols = [c for c in df.columns if df[c].map(lambda v: isinstance(v, Summary)).any()]
    if not cols:
        return df, None
    out, shown = df.copy(), df.copy()
    for c in cols:
        cells = df[c]
        pos = list(out.columns).index(c)
        out[c] = [v.mean if isinstance(v, Summary) else v for v in cells]
        out.insert(pos + 1, f"{c} sd", [v.sd if isinstance(v, Summary) and v.n > 1 else None for v in cells])
        out.insert(pos + 2, f"{c} n", [v.n if isinstance(v, Summary) else None for v in cells])
        shown[c] = [v.text() if isinstance(v, Summary) else v for v in cells]
    return out, shown


class Report:
    """Collects one notebook run's outputs under ``reports/<notebook>/`` (see the module's life cycle).

    ``dir`` is the notebook's folder (the last complete results, caches, run units); ``run_dir``
    (``dir/running``) receives this run's files until :meth:`finish` promotes them. One run per
    notebook folder at a time: a new Report replaces the ``running/`` folder it finds.
    """

    def __init__(self, notebook: str, params: dict, root: str | os.PathLike | None = None, title: str = ""):
        self.notebook = notebook
        self._t0 = time.perf_counter()
        self.runs = None  # set by imgclf.papers.start: the notebook's run units (imgclf.runs.Runs)
        self.dir = config.reports_dir(notebook, root)
        recover(self.dir)  # finish a promotion a killed run left half done; drop stale .part files
        self.run_dir = self.dir / RUNNING
        if self.run_dir.exists():  # the outputs of a run that failed or was killed: this run replaces them
            shutil.rmtree(self.run_dir)
        self.fig_dir = self.run_dir / "figures"
        started = _dt.datetime.now(_dt.timezone.utc)
        self.results: dict[str, Any] = {
            "notebook": notebook,
            "run_id": f"{started:%Y%m%dT%H%M%S.%fZ}-{os.getpid()}",
            "title": title,
            "profile": params.get("profile"),
            "seed": params.get("seed"),
            "params": params,
            "started": started.isoformat(timespec="seconds"),
            "git": git_provenance(),
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
            "captions": {},
            "complete": False,
        }
        self.save()

    # -- outputs --------------------------------------------------------------------------
    def figure(self, fig, name: str, caption: str | None = None) -> None:
        """Save ``fig`` as ``figures/<name>.png`` and show it once, captioned.

        In a notebook (JupyterLab or papermill) the saved PNG is displayed as an image output
        tagged with its path (output metadata ``imgclf.figure``), followed by its caption, and the
        figure is closed so that no matplotlib backend shows it a second time. ``caption``
        defaults to the paper figure or table the name encodes (:func:`default_caption`).
        """
        path = plots.save_figure(fig, self.fig_dir / f"{name}.png")
        rel = path.relative_to(self.run_dir).as_posix()
        caption = caption or default_caption(name)
        if rel not in self.results["figures"]:
            self.results["figures"].append(rel)
        self.results.setdefault("captions", {})[rel] = caption
        self.save()
        if _in_kernel():
            import base64

            png = base64.b64encode(path.read_bytes()).decode("ascii")
            _display({"image/png": png, "text/plain": f"<figure {rel}>"}, {"imgclf": {"figure": rel}})
            _display({"text/html": f'<p class="imgclf-caption">{html.escape(caption)} '
                                   f'<small>(<code>{html.escape(rel)}</code>)</small></p>',
                      "text/plain": f"{caption} ({rel})"}, {"imgclf": {"caption": rel}})
        plt.close(fig)

    def table(self, df: pd.DataFrame, name: str, float_format: str = "%.4f") -> pd.DataFrame:
        """Save ``df`` as ``<name>.csv``; returns it for display."""
        atomic_write_text(self.run_dir / f"{name}.csv", df.to_csv(float_format=float_format))
        if f"{name}.csv" not in self.results["tables"]:
            self.results["tables"].append(f"{name}.csv")
        self.save()
        return df

    def comparison(self, df: pd.DataFrame, name: str, caption: str | None = None) -> pd.DataFrame:
        """A paper-vs-ours table (columns include ``paper`` and ``ours``): CSV plus results.json,
        with an ``ours - paper`` column added when missing (:func:`with_delta`).

        Cells may hold :class:`imgclf.stats.Summary` values (mean ± sd over seeds): the CSV and
        ``results.json`` keep their numbers (``<column>`` the mean, ``<column> sd``, ``<column> n``),
        the display shows "mean ± sd (n)". In a notebook the table is displayed once, its delta
        column coloured; the notebook need not display the returned frame again.
        """
        df, shown = expand_summaries(df)
        df = with_delta(df)
        self.table(df, name)
        self.results["comparisons"][name] = json.loads(df.reset_index().to_json(orient="records"))
        self.save()
        if _in_kernel():
            view = with_delta(shown) if shown is not None else df
            if shown is not None and DELTA in df.columns and DELTA not in shown.columns:
                view = shown.copy()
                view.insert(list(view.columns).index("ours") + 1 if "ours" in view.columns else len(view.columns),
                            DELTA, df[DELTA])
            ref = paper_reference(name)
            cap = caption or (f"{ref} of the paper vs ours" if ref else name.replace("_", " "))
            _display({"text/html": styled_comparison(view, cap).to_html(), "text/plain": view.to_string()},
                     {"imgclf": {"comparison": name}})
        return df

    def headline(self, what: str, paper: Any, ours: Any, note: str = "", *, comparable: bool = True,
                 better: str | None = "higher") -> None:
        """One line for the index and README: the paper's number beside ours.

        ``paper`` is a number from the paper (``None`` when it has none); ``ours`` a number or a
        :class:`imgclf.stats.Summary` over seeds or folds (stored as mean, sd, n and interval).
        ``comparable=False`` shows no delta (other data, another task). ``better``: ``"higher"``,
        ``"lower"`` or ``None`` (no direction): colours the delta better/worse, not up/down.
        """
        self.results["headline"] = [h for h in self.results["headline"] if h["what"] != what]
        self.results["headline"].append({"what": what, "paper": _jsonable(paper), "ours": _jsonable(ours),
                                         "note": note, "comparable": bool(comparable), "better": better})
        self.save()

    def claim(self, paired: Any, what: str = "", *, higher_is_better: bool = True) -> str:
        """A conclusion decided by a paired measurement (:class:`imgclf.stats.Paired`): stored in
        ``results.json`` under ``claims`` as numbers, shown as one line ("A − B = +0.012, 95 % CI
        [+0.004, +0.020] (n = 3): beats"). Returns the verdict: ``"beats"``, ``"below"`` or ``"tie"``."""
        verdict = paired.verdict(higher_is_better)
        rec = {"what": what or f"{paired.a} vs {paired.b}", **paired.as_dict(), "verdict": verdict,
               "higher_is_better": higher_is_better}
        self.results.setdefault("claims", [])
        self.results["claims"] = [c for c in self.results["claims"] if c["what"] != rec["what"]] + [rec]
        self.save()
        if _in_kernel():
            text = paired.text(higher_is_better=higher_is_better)
            _display({"text/html": f'<p class="imgclf-claim"><b>{html.escape(what + ": ") if what else ""}</b>'
                                   f'{html.escape(text)}</p>', "text/plain": (what + ": " if what else "") + text},
                     {"imgclf": {"claim": rec["what"]}})
        return verdict

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
        """Mark the run complete and make it the notebook's results: ``running/results.json`` is
        written with ``complete: true`` (from here on the run counts as done, even if killed), then
        promoted to ``results.json`` with its tables and figures (:func:`promote`)."""
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
        """Write this run's ``running/results.json`` (atomically; the last complete results stay).
        Once the run is complete (:meth:`finish`), every save is promoted at once, so a metric or
        note added after ``finish()`` reaches ``results.json`` too. Returns the file written."""
        text = json.dumps(_jsonable(self.results), indent=2, sort_keys=False)
        path = atomic_write_text(self.run_dir / "results.json", text + "\n")
        if self.results.get("complete") is True and promote(self.dir):
            return self.dir / "results.json"
        return path


RUNNING = "running"
"""The folder under ``reports/<notebook>/`` where the run in progress writes."""


def _listed(results: dict) -> set[str]:
    """The tables and figures a results.json lists (relative paths that stay in the folder)."""
    names = set(results.get("tables", [])) | set(results.get("figures", []))
    return {n for n in names if isinstance(n, str) and n and not n.startswith("/") and ".." not in n.split("/")}


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
    if new.get("complete") is not True:
        return False
    try:
        old = _listed(json.loads((nb_dir / "results.json").read_text()))
    except (OSError, ValueError):
        old = set()
    for rel in sorted(_listed(new)):
        src, dst = run / rel, nb_dir / rel
        if src.exists():  # else moved already by a promotion that was cut short
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    os.replace(run / "results.json", nb_dir / "results.json")
    for rel in sorted(old - _listed(new)):
        (nb_dir / rel).unlink(missing_ok=True)
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
    :class:`Report` replaces it."""
    nb_dir = Path(nb_dir)
    if nb_dir.is_dir():
        promote(nb_dir)
        remove_stale_parts(nb_dir)


def side_by_side(paper: pd.DataFrame, ours: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Long table ``(row, column) -> paper, ours, ours - paper`` over the cells both tables have."""
    p = paper.stack(list(range(paper.columns.nlevels)), future_stack=True).rename("paper")
    o = ours.stack(list(range(ours.columns.nlevels)), future_stack=True).rename("ours")
    df = pd.concat([p, o], axis=1, join="inner")
    df["ours - paper"] = df["ours"] - df["paper"]
    return df.round(digits)
