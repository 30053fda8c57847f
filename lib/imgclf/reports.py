"""Everything a notebook produces goes through a :class:`Report`.

``reports/<notebook>/`` receives each table as CSV, each figure as PNG under ``figures/`` and
``results.json`` (parameters, metrics, timings, hardware, library versions, the paper-vs-ours
comparisons and honest notes). Every file is written atomically, and ``results.json`` is
rewritten after each step, so a killed run leaves complete files of the steps it finished.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
import platform
import re
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
        self.dir = config.reports_dir(notebook, root)
        self.fig_dir = self.dir / "figures"
        self.results: dict[str, Any] = {
            "notebook": notebook,
            "title": title,
            "profile": params.get("profile"),
            "seed": params.get("seed"),
            "params": params,
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
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
        rel = str(path.relative_to(self.dir))
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
        atomic_write_text(self.dir / f"{name}.csv", df.to_csv(float_format=float_format))
        if f"{name}.csv" not in self.results["tables"]:
            self.results["tables"].append(f"{name}.csv")
        self.save()
        return df

    def comparison(self, df: pd.DataFrame, name: str, caption: str | None = None) -> pd.DataFrame:
        """A paper-vs-ours table (columns include ``paper`` and ``ours``): CSV plus results.json,
        with an ``ours - paper`` column added when missing (:func:`with_delta`).

        In a notebook the table is displayed once, its delta column coloured by sign and size
        (:func:`styled_comparison`); the notebook need not display the returned frame again.
        """
        df = with_delta(df)
        self.table(df, name)
        self.results["comparisons"][name] = json.loads(df.reset_index().to_json(orient="records"))
        self.save()
        if _in_kernel():
            ref = paper_reference(name)
            cap = caption or (f"{ref} of the paper vs ours" if ref else name.replace("_", " "))
            _display({"text/html": styled_comparison(df, cap).to_html(), "text/plain": df.to_string()},
                     {"imgclf": {"comparison": name}})
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
