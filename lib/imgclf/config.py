"""Paths, and the typed config every paper is run with.

Each paper's settings are one frozen dataclass, ``imgclf.papers.pNN_<name>.config.Config``: its
defaults are the paper's settings, and its ``PROFILES`` are short diffs from them (``smoke``: a
2-core CPU in minutes, plus any named profile a paper adds), as big_vision's configs and nanoGPT's
override files do. A notebook's ``parameters`` cell names a profile and may set any field;
:func:`make` applies the profile, then the parameters, and checks every value (type, sign, range,
choices, lengths, files, and the paper's cross-field checks), so a bad parameter stops the notebook
before any work, with a message that names it. The config object is then passed whole.

Fields whose metadata says ``key=False`` (:data:`NOT_A_KEY`) change no computed result (how many
images a figure shows, where reports go, the time budget): run units do not depend on them.

Paths: the data directory is the ``data_dir`` parameter when given, else the ``IMGCLF_DATA``
environment variable, else ``<project>/data``; reports go to the ``reports_root`` parameter, else
``<project>/reports``. The project folder (:data:`REPO_ROOT`) is the source checkout when the package
runs from one (``pip install -e .``, or ``PYTHONPATH=lib``), else, for an installed package
(``pip install git+...``, Colab), the working directory at import: ``data/`` and ``reports/``
beside the notebook you run, never inside ``site-packages``. This module is the only place that
reads the environment (besides :mod:`imgclf.logs`, which sets TensorFlow's log level).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any



def source_checkout(package_file: str | os.PathLike = __file__) -> Path | None:
    """The root of the source checkout this package runs from (``<root>/lib/imgclf/...`` beside
    ``<root>/pyproject.toml``), or ``None`` for an installed copy (``site-packages/imgclf``)."""
    root = Path(package_file).resolve().parents[2]
    pkg = Path(package_file).resolve().parent
    if (root / "pyproject.toml").is_file() and pkg == root / "lib" / "imgclf":
        return root
    return None


SOURCE_ROOT = source_checkout()
"""The source checkout, or ``None`` when the package is installed (then git cannot say which
commit the code is: :func:`imgclf.provenance_env.code_version` asks pip's install record)."""

REPO_ROOT = SOURCE_ROOT if SOURCE_ROOT is not None else Path.cwd().resolve()
"""The project folder: default ``data/``, ``reports/`` and ``results/`` are under it (see above)."""

PROFILE_NAMES = ("smoke", "paper")

NOTEBOOKS = (
    "01_two_stage_autoencoder",
    "02_fracture_cnn",
    "03_mnist_deep_cnns",
    "04_knn_slicing_evolution",
    "05_linnaeus_transfer",
)


class ParameterError(ValueError):
    """A notebook parameter has a bad value; the message names the parameter."""


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------
def data_dir(value: str | os.PathLike | None = None) -> Path:
    """The data directory: ``value`` if given, else ``$IMGCLF_DATA``, else ``<project>/data``
    (:data:`REPO_ROOT`: the checkout, or the working directory of an installed package)."""
    if value is not None:
        return Path(value).expanduser().resolve()
    env = os.environ.get("IMGCLF_DATA")
    if env:
        return Path(env).expanduser().resolve()
    return REPO_ROOT / "data"


def existing_data_dir(value: str | os.PathLike | None = None) -> Path:
    """:func:`data_dir`, checked to be an existing directory (else :class:`ParameterError`)."""
    d = data_dir(value)
    if not d.is_dir():
        origin = "the data_dir parameter" if value is not None else (
            "$IMGCLF_DATA" if os.environ.get("IMGCLF_DATA") else "the default data/")
        raise ParameterError(
            f"parameter 'data_dir': {d} (from {origin}) is not a directory. Point data_dir (or "
            f"IMGCLF_DATA) at the folder that holds mnist/, faces/, fracture/, flowers/ (see data/README.md)."
        )
    return d


def reports_dir(notebook: str, root: str | os.PathLike | None = None) -> Path:
    """``reports/<notebook>/`` (created), under ``root`` or :data:`REPO_ROOT` (the checkout, or the
    working directory of an installed package)."""
    base = Path(root) if root is not None else REPO_ROOT / "reports"
    out = base / notebook
    out.mkdir(parents=True, exist_ok=True)
    return out


# --------------------------------------------------------------------------------------------
# Rules beyond type and sign. A paper module's RULES maps a setting to one rule; a rule on a list
# setting applies to every number in it (Range, OneOf) or to every entry (Length).
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    """``lo <= v <= hi`` (``<`` where the end is open); ``None``: unbounded."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def check(self, name: str, v: Any) -> None:
        bad_lo = self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo)
        bad_hi = self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi)
        if bad_lo or bad_hi:
            lo = "-inf" if self.lo is None else self.lo
            hi = "inf" if self.hi is None else self.hi
            interval = f"{'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
            raise ParameterError(f"parameter {name!r} must lie in {interval}, got {v!r}")


@dataclass(frozen=True)
class OneOf:
    """One of ``options``."""

    options: tuple

    def check(self, name: str, v: Any) -> None:
        if v not in self.options:
            raise ParameterError(f"parameter {name!r} must be one of {list(self.options)}, got {v!r}")


@dataclass(frozen=True)
class Length:
    """A list of lists, each of length ``n`` (e.g. ``[train, test, epochs]`` triples)."""

    n: int
    what: str = ""

    def check(self, name: str, v: Any) -> None:
        if not isinstance(v, Sequence) or isinstance(v, str) or len(v) != self.n:
            what = f" ({self.what})" if self.what else ""
            raise ParameterError(f"parameter {name!r} must have {self.n} entries{what}, got {v!r}")


FRACTION = Range(0.0, 1.0)                              # noise levels, thresholds
OPEN_FRACTION = Range(0.0, 1.0, lo_open=True, hi_open=True)  # test/validation shares
DROPOUT = Range(0.0, 1.0, hi_open=True)                 # dropout rates, momentum
POSITIVE = Range(0.0, None, lo_open=True)               # learning rates, step sizes


def _apply_rule(name: str, value: Any, rule) -> None:
    if isinstance(rule, Length):
        for i, v in enumerate(value):
            rule.check(f"{name}[{i}]", v)
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _apply_rule(f"{name}[{i}]", v, rule)
        return
    rule.check(name, value)


# --------------------------------------------------------------------------------------------
# The config: one frozen dataclass per paper, profiles as diffs, every value checked
# --------------------------------------------------------------------------------------------
NOT_A_KEY = {"key": False}
"""Field metadata of a setting that changes no computed result (run units ignore it)."""


def not_a_key(default: Any) -> Any:
    """``dataclasses.field(default=..., metadata=NOT_A_KEY)``: a setting run units do not depend on."""
    return field(default=default, metadata=NOT_A_KEY)


@dataclass(frozen=True)
class Common:
    """The settings every notebook has. A paper's ``Config`` subclasses this and adds its own."""

    profile: str = not_a_key("paper")
    seed: int = 0  # seeds every split, subset, initialisation and noise draw
    data_dir: str | None = not_a_key(None)  # None: $IMGCLF_DATA, else data/ (see data_dir())
    reports_root: str | None = not_a_key(None)  # None: reports/ beside the notebooks
    budget_minutes: float | None = not_a_key(None)  # start no new run unit after this many minutes
    reuse_runs: bool | str = not_a_key(True)  # False: recompute every unit; "any-code": keep old-code units
    runs_only: str | None = not_a_key(None)  # compute only the unit of this key (./run_all.sh reproduce); skip the rest

    def as_dict(self) -> dict[str, Any]:
        """Every field, for ``results.json`` and the report's settings table."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def check(self) -> None:
        """Checks across fields (a paper overrides this; raise :class:`ParameterError`)."""


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def key_fields(cfg: Any) -> dict[str, Any]:
    """The fields of ``cfg`` that run units depend on (all but the :data:`NOT_A_KEY` ones)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.metadata.get("key", True)}


def check_profile(profile: Any, profiles: Mapping[str, Any] | Sequence[str] = PROFILE_NAMES) -> str:
    if profile not in profiles:
        raise ParameterError(f"parameter 'profile' must be one of {list(profiles)}, got {profile!r}")
    return profile


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"parameter 'seed' must be a non-negative integer, got {seed!r}")
    return seed


def _check_budget(value: Any) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not value > 0 or value == float("inf")):
        raise ParameterError(f"parameter 'budget_minutes' must be None or a positive number of minutes, got {value!r}")
    return value


def _check_reuse(value: Any) -> bool | str:
    if value not in (True, False, "any-code") or (not isinstance(value, bool) and value != "any-code"):
        raise ParameterError(f"parameter 'reuse_runs' must be true, false or 'any-code', got {value!r}")
    return value


def _check_like(name: str, value: Any, default: Any) -> Any:
    """Check ``value`` against the type and sign of the profile's ``default``."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ParameterError(f"parameter {name!r} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterError(f"parameter {name!r} must be an integer, got {value!r}")
        if value <= 0:
            raise ParameterError(f"parameter {name!r} must be positive, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(f"parameter {name!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ParameterError(f"parameter {name!r} must be a finite number, got {value!r}")
        if value < 0:
            raise ParameterError(f"parameter {name!r} must not be negative, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ParameterError(f"parameter {name!r} must be a string, got {value!r}")
        return value
    if isinstance(default, Sequence):
        if isinstance(value, str) or not isinstance(value, Sequence) or len(value) == 0:
            raise ParameterError(f"parameter {name!r} must be a non-empty list, got {value!r}")
        return tuple(_check_like(f"{name}[{i}]", v, default[0]) for i, v in enumerate(value))
    return value


def _frozen(value: Any) -> Any:
    """Lists (from YAML or a profile) as tuples, so a config stays immutable and hashable."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def check_values(values: Mapping[str, Any], rules: Mapping[str, Any]) -> None:
    """Apply ``rules`` (name -> :class:`Range` / :class:`OneOf` / :class:`Length` / :class:`File`)."""
    for name, rule in rules.items():
        if name in values and values[name] is not None:
            _apply_rule(name, values[name], rule)


def make(paper_config: ModuleType, profile: str = "paper", seed: int = 0, **overrides: Any):
    """The config of one run: ``paper_config.Config()`` (the paper's settings), the profile's diff
    ``paper_config.PROFILES[profile]``, then ``overrides`` (``None``: keep the profile's value).

    Every value, the profile's own included, is checked: type and sign against the field's value,
    then ``paper_config.RULES``, then ``Config.check()`` across fields. Raises
    :class:`ParameterError` naming the parameter.
    """
    profiles_ = paper_config.PROFILES
    check_profile(profile, profiles_)
    check_seed(seed)
    Config = paper_config.Config
    names = set(field_names(Config))
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ParameterError(f"parameter(s) {unknown} are not settings of {Config.__module__}.Config; "
                             f"its settings: {sorted(names)}")
    base = Config()
    values = {k: _frozen(v) for k, v in profiles_[profile].items()}
    for name, value in overrides.items():
        if value is None:
            continue
        if name == "budget_minutes":
            value = _check_budget(value)
        elif name == "reuse_runs":
            value = _check_reuse(value)
        elif name == "runs_only":
            if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9.-]+", value):
                raise ParameterError(f"parameter 'runs_only' must be a run unit key such as "
                                     f"'fit-model-0123456789-abcdef01', got {value!r}")
        else:
            value = _check_like(name, value, values.get(name, getattr(base, name)))
        values[name] = _frozen(value)
    values.update(profile=profile, seed=seed)
    cfg = dataclasses.replace(base, **values)
    check_values(cfg.as_dict(), getattr(paper_config, "RULES", {}))
    cfg.check()
    return cfg


def resolve(notebook: str, profile: str, seed: int = 0, **overrides: Any):
    """:func:`make` for a notebook by name (``"02_fracture_cnn"``)."""
    return make(paper_module(notebook).config, profile, seed, **overrides)


def paper_module(notebook: str) -> ModuleType:
    """The paper package of a notebook: ``imgclf.papers.p<notebook>``."""
    if notebook not in NOTEBOOKS:
        raise KeyError(f"no paper package for notebook {notebook!r}; known: {list(NOTEBOOKS)}")
    return importlib.import_module(f"imgclf.papers.p{notebook}")


@dataclass(frozen=True)
class File:
    """A path to an existing file (``None`` allowed); ``allowed`` names words that are not paths
    (``"imagenet"``)."""

    allowed: tuple = ()

    def check(self, name: str, v: Any) -> None:
        if v in self.allowed:
            return
        if not isinstance(v, (str, os.PathLike)):
            raise ParameterError(f"parameter {name!r} must be a file path or None, got {v!r}")
        if not Path(v).expanduser().is_file():
            raise ParameterError(f"parameter {name!r}: no such file {str(Path(v).expanduser())!r}")


def existing_file_or_none(name: str, value: Any) -> str | None:
    """An extra parameter that names a file: ``None``, or a path to an existing file."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ParameterError(f"parameter {name!r} must be a file path or None, got {value!r}")
    p = Path(value).expanduser()
    if not p.is_file():
        raise ParameterError(f"parameter {name!r}: no such file {str(p)!r}")
    return str(p.resolve())
