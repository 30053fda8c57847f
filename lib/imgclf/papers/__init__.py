"""One home per paper, each with the same three places::

    pNN_<name>/config.py     Config: a frozen dataclass whose defaults are the paper's settings;
                             PROFILES: short diffs from them ("smoke", ...); RULES for the values
    pNN_<name>/published.py  the paper's own numbers and tables
    pNN_<name>/pipeline.py   the steps in the paper's order, each a function

and ``NOTEBOOK``, ``TITLE`` in its ``__init__``. A notebook imports its own paper package and the
shared floors (``data``, ``models``, ``train``, ``metrics``, ``stats``, ``plots``, ``reports``);
paper packages never import each other. Every notebook starts with one call, :func:`start`, right
after its ``parameters`` cell.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import Any

from .. import config
from ..config import ParameterError

_IPYTHON_NAMES = {"In", "Out", "exit", "quit", "get_ipython", "open"}


def declared_parameters(paper: types.ModuleType) -> set[str]:
    """Every name a notebook's ``parameters`` cell may set: the fields of its paper's ``Config``."""
    return set(config.field_names(paper.config.Config))


def _user_values(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The plain values in a notebook's namespace (what a parameters cell or papermill defines)."""
    return {
        n: v for n, v in namespace.items()
        if not n.startswith("_") and n not in _IPYTHON_NAMES
        and not isinstance(v, types.ModuleType) and not callable(v)
    }


def check_parameters(paper: types.ModuleType, namespace: Mapping[str, Any]):
    """Check a notebook's parameters before any work, in this order: ``profile``; no undeclared
    name (papermill only warns about one, and the run would go on with the defaults); ``seed``;
    every setting's type, sign and range (:func:`imgclf.config.make`); ``data_dir`` exists.

    Returns the run's config (``data_dir`` resolved). Raises :class:`ParameterError` naming the
    parameter.
    """
    cfg_module = paper.config
    profile = config.check_profile(namespace.get("profile"), cfg_module.PROFILES)
    declared = declared_parameters(paper)
    unknown = sorted(set(_user_values(namespace)) - declared)
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {unknown} for notebook {paper.NOTEBOOK} (a typo?); "
            f"its parameters are: {sorted(declared)}"
        )
    values = {k: namespace.get(k) for k in declared if k not in ("profile", "seed")}
    cfg = config.make(cfg_module, profile, namespace.get("seed", 0), **values)
    data_dir = config.existing_data_dir(namespace.get("data_dir"))
    return dataclasses.replace(cfg, data_dir=str(data_dir))


def start(paper: types.ModuleType, namespace: Mapping[str, Any]):
    """The set-up cell of every notebook: check the parameters (:func:`check_parameters`), seed
    everything (``train.set_seed``), open the run's :class:`~imgclf.reports.Report` and show the
    settings.

    Returns ``(cfg, report)``: the run's config (pass it whole) and the report, whose
    ``report.runs`` (:class:`imgclf.runs.Runs`) stores, reuses and budgets the notebook's run units.
    Every Keras fit from here on also writes TensorBoard logs to ``reports/<notebook>/tensorboard``.
    """
    import pandas as pd
    from IPython.display import display

    from .. import train
    from ..reports import Report, display_options
    from ..runs import Runs

    cfg = check_parameters(paper, namespace)
    display_options()  # pandas: nothing cut, whole numbers as integers, wide tables split
    # paper 3 decides determinism with its device set-up (off on a GPU); the others keep it on
    train.set_seed(cfg.seed, deterministic=getattr(paper, "DETERMINISTIC", True))
    report = Report(paper.NOTEBOOK, cfg.as_dict(), root=cfg.reports_root, title=paper.TITLE)
    report.runs = Runs(report.dir / "runs", reuse=cfg.reuse_runs, budget_minutes=cfg.budget_minutes,
                       only=cfg.runs_only)
    train.log_tensorboard_to(report.dir / "tensorboard" / cfg.profile)
    # one row per setting: a wide one-row table would be cut by pandas and hide the profile
    display(pd.DataFrame({"value": {k: str(v) for k, v in cfg.as_dict().items()}}))
    return cfg, report
