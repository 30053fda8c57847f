"""The :class:`Report` of one notebook run: every table (CSV), figure (PNG) and number
(``results.json``: parameters, metrics, timings, provenance, headline, claims, comparisons, notes)
goes through it into ``reports/<notebook>/``, written atomically; the life cycle of that folder is
:mod:`imgclf.reports.folder`'s."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from .. import config, locks, plots
from ..files import atomic_write_text, jsonable
from . import display
from .folder import RUNNING, promote, recover
from ..provenance_env import environment
from .provenance import git_provenance, hardware

_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _file_name(name: str, what: str) -> str:
    """``name`` when it is a plain file name (figures and tables are named by the notebook, and a
    name must not leave the run's folder nor break the HTML that shows it)."""
    if not isinstance(name, str) or not _FILE_NAME.match(name) or ".." in name:
        raise ValueError(f"{what} name {name!r}: use letters, digits and _ . - only")
    return name


class Report:
    """Collects one notebook run's outputs under ``reports/<notebook>/`` (see
    :mod:`imgclf.reports.folder` for the life cycle).

    ``dir`` is the notebook's folder (the last complete results, caches, run units); ``run_dir``
    (``dir/running``) receives this run's files until :meth:`finish` promotes them. One run per
    notebook folder at a time: a Report takes the folder's lock (:mod:`imgclf.locks`) and a second
    one, in another process, is refused with :class:`imgclf.locks.NotebookBusy` naming the first;
    the lock is given back by :meth:`finish` or when the process ends (or dies). A new Report then
    replaces the ``running/`` folder a failed or killed run left.
    """

    def __init__(self, notebook: str, params: dict, root: str | os.PathLike | None = None, title: str = ""):
        self.notebook = notebook
        self._t0 = time.perf_counter()
        self.runs = None  # set by imgclf.papers.start: the notebook's run units (imgclf.runs.Runs)
        self.dir = config.reports_dir(notebook, root)
        # one run per folder: a second run is refused (NotebookBusy) before it touches running/
        self._lock = locks.FolderLock(self.dir, f"notebook {notebook}").acquire()
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
            "environment": environment(),  # every installed package, the lock file's differences, the code version
            "metrics": {},
            "timings": {},
            "comparisons": {},
            "headline": [],
            "claims": [],
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
        defaults to the paper figure or table the name encodes (:func:`display.default_caption`).
        """
        path = plots.save_figure(fig, self.fig_dir / f"{_file_name(name, 'figure')}.png")
        rel = path.relative_to(self.run_dir).as_posix()
        caption = caption or display.default_caption(name)
        if rel not in self.results["figures"]:
            self.results["figures"].append(rel)
        self.results.setdefault("captions", {})[rel] = caption
        self.save()
        if display.in_kernel():
            png = base64.b64encode(path.read_bytes()).decode("ascii")
            display.show({"image/png": png, "text/plain": f"<figure {rel}>"}, {"imgclf": {"figure": rel}})
            display.show({"text/html": f'<p class="imgclf-caption">{html.escape(caption)} '
                                       f'<small>(<code>{html.escape(rel)}</code>)</small></p>',
                          "text/plain": f"{caption} ({rel})"}, {"imgclf": {"caption": rel}})
        plt.close(fig)

    def table(self, df: pd.DataFrame, name: str, float_format: str = "%.4f") -> pd.DataFrame:
        """Save ``df`` as ``<name>.csv``; returns it for display."""
        name = _file_name(name, "table")
        atomic_write_text(self.run_dir / f"{name}.csv", df.to_csv(float_format=float_format))
        if f"{name}.csv" not in self.results["tables"]:
            self.results["tables"].append(f"{name}.csv")
        self.save()
        return df

    def comparison(self, df: pd.DataFrame, name: str, caption: str | None = None, *, better: Any = "higher") -> pd.DataFrame:
        """A paper-vs-ours table (columns include ``paper`` and ``ours``): CSV plus results.json,
        with an ``ours - paper`` column added when missing (:func:`display.with_delta`).

        Cells may hold :class:`imgclf.stats.Summary` values (mean ± sd over seeds): the CSV and
        ``results.json`` keep their numbers (``<column>`` the mean, ``<column> sd``, ``<column> n``),
        the display shows "mean ± sd (n)". In a notebook the table is displayed once, its delta
        column coloured better/worse: ``better`` is ``"higher"``, ``"lower"``, ``None`` (no
        direction: neutral) or a mapping row -> one of those. The notebook need not display the
        returned frame again.
        """
        df, shown = display.expand_summaries(df)
        df = display.with_delta(df)
        self.table(df, name)
        self.results["comparisons"][name] = json.loads(df.reset_index().to_json(orient="records"))
        self.save()
        if display.in_kernel():
            view = df
            if shown is not None:
                view = shown.copy()
                if display.DELTA in df.columns and display.DELTA not in view.columns:
                    at = list(view.columns).index("ours") + 1 if "ours" in view.columns else len(view.columns)
                    view.insert(at, display.DELTA, df[display.DELTA])
            ref = display.paper_reference(name)
            cap = caption or (f"{ref} of the paper vs ours" if ref else name.replace("_", " "))
            display.show({"text/html": display.styled_comparison(view, cap, better).to_html(),
                          "text/plain": view.to_string()}, {"imgclf": {"comparison": name}})
        return df

    def headline(self, what: str, paper: Any, ours: Any, note: str = "", *, comparable: bool = True,
                 better: str | None = "higher") -> None:
        """One line for the index and README: the paper's number beside ours.

        ``paper`` is a number from the paper (``None`` when it has none); ``ours`` a number or a
        :class:`imgclf.stats.Summary` over seeds or folds (stored as mean, sd, n and interval).
        ``comparable=False`` shows no delta (other data, another task). ``better``: ``"higher"``,
        ``"lower"`` or ``None`` (no direction): colours the delta better/worse, not up/down.
        """
        if better not in display.BETTER:
            raise ValueError(f"better must be one of {display.BETTER}, got {better!r}")
        self.results["headline"] = [h for h in self.results["headline"] if h["what"] != what]
        self.results["headline"].append({"what": what, "paper": jsonable(paper), "ours": jsonable(ours),
                                         "note": note, "comparable": bool(comparable), "better": better})
        self.save()

    def claim(self, paired: Any, what: str = "", *, higher_is_better: bool = True) -> str:
        """A conclusion decided by a paired measurement (:class:`imgclf.stats.Paired`): stored in
        ``results.json`` under ``claims`` as numbers, shown as one line ("A − B = +0.012, 95 % CI
        [+0.004, +0.020] (n = 3): beats") here and in the index. Returns the verdict: ``"beats"``,
        ``"below"`` or ``"tie"``."""
        verdict = paired.verdict(higher_is_better)
        rec = {"what": what or f"{paired.a} vs {paired.b}", **paired.as_dict(), "verdict": verdict,
               "higher_is_better": higher_is_better}
        self.results.setdefault("claims", [])
        self.results["claims"] = [c for c in self.results["claims"] if c["what"] != rec["what"]] + [rec]
        self.save()
        if display.in_kernel():
            text = paired.text(higher_is_better=higher_is_better)
            display.show({"text/html": f'<p class="imgclf-claim"><b>{html.escape(what + ": ") if what else ""}</b>'
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
        promoted to ``results.json`` with its tables and figures (:func:`folder.promote`)."""
        self.results["timings"].setdefault("notebook", round(time.perf_counter() - self._t0, 3))
        runs = self.runs
        if runs is not None and runs.total:
            self.results["runs"] = runs.summary()
            self.results["partial"] = {"done": runs.done, "total": runs.total} if runs.skipped else None
            why = ("" if not runs.skipped else f"; only {runs.only} was asked for" if runs.budget_minutes is None
                   else f"; the budget of {runs.budget_minutes:g} min was spent: run the notebook again to go on")
            self.note(f"run units: {runs.status()}{why}")
        self.results["complete"] = True
        self.results["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        plt.close("all")
        out = self.save()
        self._lock.release()  # a later save() takes it again for an instant
        return out

    def stop_if_partial(self, why: str) -> None:
        """End the notebook here when a time budget (or ``runs_only``) left units for the next run
        and the cells below need them all: the report is finished as partial (``results.json``
        says how many units are done; the index shows it), then :class:`imgclf.runs.PartialRun`
        stops the remaining cells. ``why`` says what the cells below need. Does nothing when
        every unit ran."""
        from ..runs import PartialRun

        runs = self.runs
        if runs is None or not runs.skipped:
            return
        self.note(f"stopped before the end: {why}")
        self.finish()
        raise PartialRun(f"{runs.status()}; {why}: run the notebook again to go on (the finished units are kept)")

    def save(self) -> Path:
        """Write this run's ``running/results.json`` (atomically; the last complete results stay).
        Once the run is complete (:meth:`finish`), every save is promoted at once, so a metric or
        note added after ``finish()`` reaches ``results.json`` too. Returns the file written."""
        if not self._lock.held:  # finished (or replaced by a newer run of this notebook in this process)
            if self.results.get("complete") is not True or locks.held_here(self.dir):
                raise locks.NotebookBusy(f"this run of {self.notebook} was replaced by a newer run in this process; "
                                         "use the newer Report")
            with locks.FolderLock(self.dir, f"notebook {self.notebook}"):
                return self._write()
        return self._write()

    def _write(self) -> Path:
        text = json.dumps(jsonable(self.results), indent=2, sort_keys=False)
        path = atomic_write_text(self.run_dir / "results.json", text + "\n")
        if self.results.get("complete") is True and promote(self.dir):
            return self.dir / "results.json"
        return path
