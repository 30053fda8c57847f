"""What a result was made with, beyond the handful of libraries :func:`imgclf.reports.hardware`
names: every installed package and its version, how this environment compares with the tested one
(``requirements-lock.txt``), and which code (commit) ran, for a source checkout and for an
installed package alike.

``results.json`` records :func:`environment` (``Report`` calls it once per run)::

    {"packages": {"absl-py": "2.3.1", ..., "tensorflow": "2.21.0", ...},
     "lock": {"file": "requirements-lock.txt", "differs": {}},
     "code": {"commit": "3b44b1a...", "dirty": false, "source": "git checkout"}}
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

from . import config

LOCK_FILE = "requirements-lock.txt"


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): ``Scikit_Learn`` -> ``scikit-learn``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions() -> dict[str, str]:
    """Every distribution importable here, ``{canonical name: version}``, sorted by name (what
    ``pip freeze`` lists, editable installs included)."""
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and canonical(name) not in out:  # the first on sys.path wins, as for imports
            out[canonical(name)] = dist.version
    return dict(sorted(out.items()))


def read_lock(path: str | Path) -> dict[str, str]:
    """``{canonical name: version}`` of the ``name==version`` lines of a lock file (comments,
    hashes, markers and other lines ignored)."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#\\]+)", line)
        if m:
            pins[canonical(m.group(1))] = m.group(3)
    return pins


def lock_differences(path: str | Path | None = None,
                     installed: dict[str, str] | None = None) -> dict[str, dict[str, str | None]]:
    """Packages of the lock file whose installed version differs: ``{name: {"locked": v,
    "installed": v or None}}`` (empty when the environment is the tested one)."""
    path = Path(path) if path is not None else config.REPO_ROOT / LOCK_FILE
    installed = installed_versions() if installed is None else installed
    return {name: {"locked": v, "installed": installed.get(name)}
            for name, v in read_lock(path).items() if installed.get(name) != v}


def code_version() -> dict:
    """Which code runs: ``{"commit", "dirty", "source"}``. From git in a source checkout; for an
    installed package, from pip's record of where it came from (``direct_url.json``: the commit
    of ``pip install git+...``), else ``commit: None`` and the package version."""
    if config.SOURCE_ROOT is not None:
        from .runs import git_commit

        return {**git_commit(config.SOURCE_ROOT), "source": "git checkout"}
    try:
        dist = metadata.distribution("imgclf")
    except metadata.PackageNotFoundError:
        return {"commit": None, "dirty": None, "source": "imgclf (no install record)"}
    url = json.loads(dist.read_text("direct_url.json") or "{}")
    vcs = url.get("vcs_info") or {}
    return {"commit": vcs.get("commit_id"), "dirty": False if vcs else None,
            "source": f"imgclf {dist.version} installed from {url.get('url', 'an index')}"}


def environment(lock: str | Path | None = None) -> dict:
    """``{"packages", "lock", "code"}`` for ``results.json`` (see the module doc)."""
    packages = installed_versions()
    path = Path(lock) if lock is not None else config.REPO_ROOT / LOCK_FILE
    return {"packages": packages,
            "lock": {"file": path.name, "differs": lock_differences(path, packages)} if path.is_file() else None,
            "code": code_version()}


def lock_lines(root: str = "imgclf", extras: tuple[str, ...] = ("dev",)) -> list[str]:
    """``name==version`` of every installed distribution that ``root[extras]`` needs, directly or
    not (markers evaluated here: the lock is for this platform and Python), sorted: the tested
    environment as a pip constraints file (``requirements-lock.txt``), ``root`` itself left out."""
    from packaging.requirements import Requirement

    dists = {}
    for d in metadata.distributions():
        if d.metadata["Name"]:
            dists.setdefault(canonical(d.metadata["Name"]), d)
    need: dict[str, set[str]] = {}
    todo = [(canonical(root), set(extras))]
    while todo:
        name, ex = todo.pop()
        if name not in dists or (name in need and ex <= need[name]):
            continue
        need[name] = need.get(name, set()) | ex
        for text in dists[name].requires or []:
            req = Requirement(text)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in need[name] or {""}):
                continue
            todo.append((canonical(req.name), set(req.extras)))
    # like pip freeze, the packaging tools are left out: a pin of setuptools would also constrain
    # the build of imgclf itself (pyproject.toml's build-system needs a newer one)
    skip = {canonical(root), "pip", "setuptools", "wheel"}
    return [f"{n}=={dists[n].version}" for n in sorted(need) if n not in skip]


def main(argv: list[str]) -> int:
    """``python -m imgclf.provenance_env lock``: print the lock file of this environment."""
    import platform
    import sys

    if argv[:1] != ["lock"]:
        print("usage: python -m imgclf.provenance_env lock > requirements-lock.txt", file=sys.stderr)
        return 2
    print(f"# The tested environment of imgclf[dev]: every package it needs, at the version the tests passed\n"
          f"# with (Python {platform.python_version()}, {platform.system()} {platform.machine()}).\n"
          f"# Used as constraints: pip install -c requirements-lock.txt -e .[dev]  (run_all.sh, .ci/run)\n"
          f"# Regenerate in that environment: python -m imgclf.provenance_env lock > requirements-lock.txt")
    print("\n".join(lock_lines()))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
