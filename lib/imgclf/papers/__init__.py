"""One home per paper: ``pNN_<notebook>`` holds that paper's pipeline, its two profiles
(``PROFILES``), the rules its parameters obey (``RULES``) and the paper's published numbers.

A notebook imports its own paper module and the shared floors (``data``, ``models``, ``train``,
``metrics``, ``plots``, ``reports``); paper modules never import each other. Every notebook starts
with one call, :func:`start`, right after its ``parameters`` cell.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

from .. import config
from ..config import ParameterError

COMMON_PARAMETERS = ("profile", "seed", "data_dir", "reports_root", "budget_minutes", "reuse_runs")
"""The parameters every notebook declares, besides its profile's settings and its extras."""

_IPYTHON_NAMES = {"In", "Out", "exit", "quit", "get_ipython", "open"}


def declared_parameters(paper: types.ModuleType) -> set[str]:
    """Every name the notebook's ``parameters`` cell declares."""
    return (set(COMMON_PARAMETERS) | set(paper.PROFILES["smoke"]) | set(getattr(paper, "EXTRA_PARAMETERS", {})))


def _user_values(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The plain values in a notebook's namespace (what a parameters cell or papermill defines)."""
    return {
        n: v for n, v in namespace.items()
        if not n.startswith("_") and n not in _IPYTHON_NAMES
        and not isinstance(v, types.ModuleType) and not callable(v)
    }


def check_parameters(paper: types.ModuleType, namespace: Mapping[str, Any]) -> tuple[dict, dict]:
    """Check a notebook's parameters before any work, in this order: ``profile``; no undeclared
    name (papermill only warns about one, and the run would go on with the defaults); ``seed``;
    every setting's type, sign and range; the notebook's extra parameters; ``data_dir`` exists.

    Returns ``(P, extras)``: the resolved settings (with ``profile`` and ``seed``) and the extra
    parameters' values. Raises :class:`ParameterError` naming the parameter.
    """
    profile = config.check_profile(namespace.get("profile"))
    declared = declared_parameters(paper)
    unknown = sorted(set(_user_values(namespace)) - declared)
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {unknown} for notebook {paper.NOTEBOOK} (a typo?); "
            f"its parameters are: {sorted(declared)}"
        )
    P = config.resolve(paper.NOTEBOOK, profile, namespace.get("seed", 0),
                       **{k: namespace.get(k) for k in paper.PROFILES[profile]})
    extras = {k: namespace.get(k, default) for k, (default, _) in getattr(paper, "EXTRA_PARAMETERS", {}).items()}
    for name, (_, check) in getattr(paper, "EXTRA_PARAMETERS", {}).items():
        if check is not None:
            extras[name] = check(name, extras[name])
    config.existing_data_dir(namespace.get("data_dir"))
    budget = namespace.get("budget_minutes")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                               or not budget > 0 or budget == float("inf")):
        raise ParameterError(f"parameter 'budget_minutes' must be None or a positive number of minutes, got {budget!r}")
    reuse = namespace.get("reuse_runs")
    reuse = True if reuse is None else reuse
    if not isinstance(reuse, bool):
        raise ParameterError(f"parameter 'reuse_runs' must be true or false, got {reuse!r}")
    extras.update(budget_minutes=budget, reuse_runs=reuse)
    return P, extras


def start(paper: types.ModuleType, namespace: Mapping[str, Any]):
    """The set-up cell of every notebook: check the parameters (:func:`check_parameters`), seed
    everything (``train.set_seed``), open the run's :class:`~imgclf.reports.Report` and show the
    settings as a one-row table.

    Returns ``(P, report)``: the resolved settings (profile values, overrides, extras, ``seed``,
    ``profile``, ``budget_minutes``, ``reuse_runs`` and the resolved ``data_dir``) and the report,
    whose ``report.runs`` (:class:`imgclf.runs.Runs`) stores, reuses and budgets the notebook's run
    units. Every Keras fit from here on also writes TensorBoard logs to ``reports/<notebook>/tensorboard``.
    """
    import pandas as pd
    from IPython.display import display

    from .. import train
    from ..reports import Report
    from ..runs import Runs

    P, extras = check_parameters(paper, namespace)
    P.update(extras)
    P["data_dir"] = str(config.data_dir(namespace.get("data_dir")))
    # paper 3 decides determinism with its device set-up (off on a GPU); the others keep it on
    train.set_seed(P["seed"], deterministic=getattr(paper, "DETERMINISTIC", True))
    report = Report(paper.NOTEBOOK, P, root=namespace.get("reports_root"), title=paper.TITLE)
    report.runs = Runs(report.dir / "runs", reuse=P["reuse_runs"], budget_minutes=P["budget_minutes"])
    train.log_tensorboard_to(report.dir / "tensorboard")
    display(pd.Series({k: str(v) for k, v in P.items()}, name="value").to_frame().T)
    return P, report
