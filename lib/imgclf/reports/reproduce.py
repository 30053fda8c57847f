"""``./run_all.sh reproduce NN [UNIT]``: recompute one published run unit at HEAD and compare.

The published run's ``units.json`` lists every unit it used with its key (``<name>-<call hash>-<code
hash>``), the commit that computed it, its wall time and its result. This command picks the cheapest
unit (or the one named, by key or by name), executes the notebook at the published profile and seed
with ``runs_only`` set to that unit's call (``<name>-<call hash>``) and a fresh reports folder, so
the notebook builds its inputs exactly as the published run did and computes that one unit and no
other; then it compares every number of the new result with the published one.

It prints the numbers side by side and ``reproduced: yes`` when every number agrees within
:data:`RTOL`/:data:`ATOL` and every other value is equal, else ``reproduced: no`` with the
differences. A unit the notebook never reaches at HEAD (its call changed) is ``reproduced: no``
with that reason. Same seed, same backend, same CPU kind: the numbers should agree to the last
digit; the tolerance only absorbs float printing.
"""

from __future__ import annotations

import json
import math
import re
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..config import NOTEBOOKS, REPO_ROOT
from .publish import UNITS
from .status import read_record

RTOL = 1e-6
"""Relative tolerance per number (same seed and backend on a CPU: bit-identical is expected)."""
ATOL = 1e-9
"""Absolute tolerance per number (for values at or near 0)."""


def leaves(value, path: str = "") -> dict[str, object]:
    """Every scalar of a JSON value by its path (``"history.loss[3]"``)."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(leaves(v, f"{path}.{k}" if path else str(k)))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(leaves(v, f"{path}[{i}]"))
        return out
    return {path: value}


TIMING = re.compile(r"(^|\.)(seconds|wall|epoch_time|elapsed|time|step_ms|[a-z_]*_seconds)(\[\d+\])*$")
"""Leaves that are wall-clock times: shown, never compared (they measure the machine, not the code)."""


def is_timing(path: str) -> bool:
    return bool(TIMING.search(path))


def _close(a, b) -> bool:
    num = (int, float)
    if isinstance(a, bool) or isinstance(b, bool) or not (isinstance(a, num) and isinstance(b, num)):
        return a == b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= ATOL + RTOL * abs(b)


def compare(published, now) -> tuple[list[tuple[str, object, object]], list[tuple[str, object, object]]]:
    """``(numbers, differences)``: every numeric leaf as ``(path, published, now)``, and every leaf
    (numeric beyond tolerance, other values unequal, or present on one side only) that differs.
    Wall-clock times (:func:`is_timing`) are in neither."""
    a, b = leaves(published), leaves(now)
    numbers, diffs = [], []
    for path in sorted(set(a) | set(b), key=lambda p: (p not in a, list(a).index(p) if p in a else 0)):
        if is_timing(path):
            continue
        x, y = a.get(path, "<absent>"), b.get(path, "<absent>")
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            numbers.append((path, x, y))
        if not _close(x, y):
            diffs.append((path, x, y))
    return numbers, diffs


def pick(units: list[dict], wanted: str | None) -> dict:
    """The unit named ``wanted`` (key, key without code hash, or name), else the cheapest one."""
    usable = [u for u in units if u.get("result") is not None and u.get("key")]
    if not usable:
        raise SystemExit("reproduce: the published units.json holds no unit with a result")
    if wanted:
        hits = [u for u in usable if wanted in (u["key"], u["key"].rsplit("-", 1)[0], u.get("name"))]
        if not hits:
            names = ", ".join(sorted({f"{u.get('name')} ({u['key']})" for u in usable})[:12])
            raise SystemExit(f"reproduce: no published unit is named {wanted!r}; some are: {names}")
        return hits[0]
    return min(usable, key=lambda u: (u.get("seconds") or math.inf))


def _notebook(prefix: str) -> str:
    hits = [n for n in NOTEBOOKS if n.startswith(prefix)]
    if len(hits) != 1:
        raise SystemExit(f"reproduce: {prefix!r} names {len(hits)} notebooks; one of {list(NOTEBOOKS)}")
    return hits[0]


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.10g}"
    return str(v)


def main(prefix: str, wanted: str | None, reports: Path, results: Path) -> int:
    name = _notebook(prefix)
    pub = read_record(results / name / "results.json").data
    try:
        units = json.loads((results / name / UNITS).read_text())
    except (OSError, ValueError):
        units = None
    if not pub or not isinstance(units, list) or not units:
        raise SystemExit(f"reproduce: results/{name}/ holds no published run with {UNITS} "
                         f"(./run_all.sh --profile paper {prefix} publishes one)")
    unit = pick(units, wanted)
    stem = unit["key"].rsplit("-", 1)[0]
    profile, seed = pub.get("profile", "paper"), pub.get("seed", 0)
    work = reports / "reproduce" / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(f"reproduce {name}: unit {unit['name']!r} ({unit['key']}), published at commit "
          f"{(unit.get('commit') or '?')[:12]}, {unit.get('seconds')} s then; profile {profile}, seed {seed}")
    print(f"  running notebooks/{name}.ipynb with runs_only={stem} in {work} ...", flush=True)
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "papermill", "-k", "imgclf", "--no-progress-bar", "--log-output",
           "-y", json.dumps({"profile": profile, "seed": seed, "runs_only": stem, "reports_root": str(work)}),
           str(REPO_ROOT / "notebooks" / f"{name}.ipynb"), str(work / "executed.ipynb")]
    with open(work / "papermill.log", "w") as log:
        # no MPLBACKEND: the kernel picks matplotlib's inline backend, as under run_all.sh
        env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - t0
    done = sorted((work / name / "runs").glob(f"{stem}-*/result.json"))
    if not done:
        why = "the notebook failed before it" if proc.returncode else "at HEAD the notebook never makes this call"
        print(f"  no unit {stem}-* was computed ({why}); log: {work / 'papermill.log'}")
        print("reproduced: no")
        return 1
    rec = json.loads(done[0].read_text())
    if proc.returncode:  # the cells after it need the units runs_only left out
        print(f"  (the notebook stopped after computing the unit, as expected where later cells need the "
              f"units runs_only leaves out; log: {work / 'papermill.log'})")
    if rec["key"] != unit["key"]:
        print(f"  note: the code changed since the published run (key {unit['key']} -> {rec['key']}); "
              "the same call was recomputed with the new code")
    numbers, diffs = compare(unit["result"], rec["result"])
    print(f"  recomputed in {rec.get('seconds')} s (notebook {seconds:.0f} s) at commit "
          f"{(rec.get('commit') or '?')[:12]}{' (dirty)' if rec.get('dirty') else ''}; "
          f"{len(numbers)} numbers compared (wall-clock times left out), tolerance |a - b| <= {ATOL:g} + {RTOL:g} |a|")
    shown = numbers if len(numbers) <= 24 else numbers[:12] + numbers[-12:]
    width = max((len(p) for p, _, _ in shown), default=10)
    print(f"  {'number':<{width}}  {'published':>16}  {'now':>16}")
    for path, a, b in shown:
        print(f"  {path:<{width}}  {_fmt(a):>16}  {_fmt(b):>16}")
    if len(numbers) > len(shown):
        print(f"  ... ({len(numbers) - len(shown)} more numbers, all compared)")
    for path, a, b in diffs[:20]:
        print(f"  DIFFERS {path}: published {_fmt(a)}, now {_fmt(b)}")
    print(f"reproduced: {'no' if diffs else 'yes'}")
    return 1 if diffs else 0
