"""Paths and parameter resolution.

A notebook's ``parameters`` cell names a *profile* (``smoke``: a 2-core CPU in minutes; ``paper``:
the paper's scale) and may override any single setting. The profiles themselves live with each
paper (``imgclf.papers.pNN_*.PROFILES``); :func:`resolve` merges a profile with the overrides and
checks every value (type, sign, range, choices, lengths), so a bad parameter stops the notebook
before any work, with a message that names it.

Paths: the data directory is the ``data_dir`` parameter when given, else the ``IMGCLF_DATA``
environment variable, else ``data/`` at the top of the repository. This module is the only place
that reads the environment.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

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
    """The data directory: ``value`` if given, else ``$IMGCLF_DATA``, else ``<repo>/data``."""
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
    """``reports/<notebook>/`` (created), under ``root`` or the repository."""
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
# Profiles and resolution
# --------------------------------------------------------------------------------------------
def paper_module(notebook: str) -> ModuleType:
    """The paper module of a notebook: ``imgclf.papers.p<notebook>``."""
    if notebook not in NOTEBOOKS:
        raise KeyError(f"no paper module for notebook {notebook!r}; known: {list(NOTEBOOKS)}")
    return importlib.import_module(f"imgclf.papers.p{notebook}")


def profiles(notebook: str) -> Mapping[str, Mapping[str, Any]]:
    """The profiles of one notebook (read-only)."""
    profs = paper_module(notebook).PROFILES
    return MappingProxyType({k: MappingProxyType(v) for k, v in profs.items()})


def check_profile(profile: Any) -> str:
    if profile not in PROFILE_NAMES:
        raise ParameterError(f"parameter 'profile' must be one of {list(PROFILE_NAMES)}, got {profile!r}")
    return profile


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"parameter 'seed' must be a non-negative integer, got {seed!r}")
    return seed


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
        return [_check_like(f"{name}[{i}]", v, default[0]) for i, v in enumerate(value)]
    return value


def check_values(values: Mapping[str, Any], rules: Mapping[str, Any]) -> None:
    """Apply ``rules`` (name -> :class:`Range` / :class:`OneOf` / :class:`Length`) to ``values``."""
    for name, rule in rules.items():
        if name in values and values[name] is not None:
            _apply_rule(name, values[name], rule)


def resolve(notebook: str, profile: str, seed: int = 0, **overrides: Any) -> dict[str, Any]:
    """Merge a notebook's profile with its overrides and validate every value.

    ``overrides`` left at ``None`` take the profile's value. Every value, the profile's own
    included, is then checked against the paper module's ``RULES``. Returns a plain dict with
    ``profile`` and ``seed`` included. Raises :class:`ParameterError` naming the parameter.
    """
    check_profile(profile)
    check_seed(seed)
    paper = paper_module(notebook)
    base = dict(paper.PROFILES[profile])
    for name, value in overrides.items():
        if name not in base:
            raise ParameterError(
                f"parameter {name!r} is not a setting of {notebook}; settings: {sorted(base)}"
            )
        if value is not None:
            base[name] = _check_like(name, value, base[name])
    check_values(base, getattr(paper, "RULES", {}))
    base.update(profile=profile, seed=seed)
    return base


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
