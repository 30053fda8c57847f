"""run_all.sh's command line (issue 22, point 6), run in a subprocess as a user runs it: help and
bad options answer at once, without building the virtual environment; a failed notebook prints
its error; ``readme`` says "updated" only when README.md changed."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _env(**extra):
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # papermill, python
    env["PYTHONPATH"] = str(REPO / "lib")
    env.update(extra)
    return env


@pytest.fixture
def bare_copy(tmp_path):
    """run_all.sh and pyproject.toml alone in an empty folder: no .venv there, and PYTHON points at
    nothing, so any attempt to build the environment fails loudly (and would create .venv)."""
    shutil.copy(REPO / "run_all.sh", tmp_path / "run_all.sh")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")

    def run(*args):
        res = subprocess.run(["bash", str(tmp_path / "run_all.sh"), *args], capture_output=True, text=True,
                             timeout=60, env=_env(PYTHON=str(tmp_path / "no-python")))
        assert not (tmp_path / ".venv").exists(), f"{args} started building the environment"
        return res

    return run


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["help"], ["01", "--help"]])
def test_help_prints_the_usage_without_building_the_environment(bare_copy, args):
    res = bare_copy(*args)
    assert res.returncode == 0, res.stderr
    assert "./run_all.sh --profile paper" in res.stdout and "IMGCLF_NO_VENV" in res.stdout
    assert "setting up" not in res.stdout + res.stderr


@pytest.mark.parametrize("args, message", [
    (["-p"], "-p needs a parameter name and a value"),
    (["-p", "epochs"], "-p needs a parameter name and a value"),
    (["--profile"], "--profile needs a value: smoke or paper"),
    (["--profile", "-p", "epochs", "3"], "--profile needs a value: smoke or paper"),
    (["--profile="], "--profile needs a value"),
    (["--budget"], "--budget needs a value"),
    (["-y"], "-y needs a YAML mapping"),
    (["--profile", "huge!"], "--profile must be a profile name (smoke, paper, cpu32...), got 'huge!'"),
    (["--backend", "theano"], "--backend must be tensorflow, jax or torch, got 'theano'"),
    (["--frobnicate"], "unknown option --frobnicate"),
])
def test_an_option_without_its_value_gets_a_clear_message(bare_copy, args, message):
    res = bare_copy(*args)
    assert res.returncode == 2
    assert message in res.stderr, res.stderr
    assert "unbound variable" not in res.stderr


@pytest.mark.notebook
def test_a_failed_notebook_prints_its_exception(tmp_path):
    """A notebook that raises: the summary line names the exception and its message (what the
    papermill log says), not only the log's path; the other notebooks still run, and one that
    stopped itself at a spent budget is reported as partial, not as a failure."""
    nbformat = pytest.importorskip("nbformat")
    shutil.copy(REPO / "run_all.sh", tmp_path / "run_all.sh")
    (tmp_path / "notebooks").mkdir()
    stop = 'from imgclf.runs import PartialRun\nraise PartialRun("partial: 0 of 5 runs; the tables need every fold")'
    for name, code in (("01_fails", 'raise ValueError(f"bad value {x}: expected 0 to 9")'), ("02_works", "y = x"),
                       ("03_budget", stop)):
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "imgclf", "language": "python",
                                                                "display_name": "Python (imgclf)"},
                                                 "language_info": {"name": "python"}})
        nb.cells = [nbformat.v4.new_code_cell("profile = 'smoke'\nx = 42", metadata={"tags": ["parameters"]}),
                    nbformat.v4.new_code_cell("import math"), nbformat.v4.new_code_cell(code)]
        nbformat.write(nb, tmp_path / "notebooks" / f"{name}.ipynb")
    res = subprocess.run(["bash", "run_all.sh"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env=_env(IMGCLF_NO_VENV="1"))
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    failed = [line.strip() for line in lines if "FAILED" in line]
    assert failed == ["FAILED: ValueError: bad value 42: expected 0 to 9  (cell In [4])"], res.stdout
    assert any(line.strip().startswith("ok in") for line in lines), res.stdout  # 02 ran after 01 failed
    # a notebook that stopped itself at a spent budget (Report.stop_if_partial) is partial, not failed
    assert "stopped early: partial: 0 of 5 runs; the tables need every fold  (cell In [4])" in res.stdout, res.stdout
    assert any(line.strip().startswith("partial in") for line in lines), res.stdout
    assert "bad value 42" in (tmp_path / "reports" / "logs" / "01_fails.smoke.log").read_text()


def test_readme_says_updated_only_when_the_file_changed(tmp_path):
    readme = tmp_path / "README.md"
    text = (REPO / "README.md").read_text()
    stale = re.sub(r"(<!-- results:01 -->\n).*?(<!-- /results:01 -->)", r"\1stale numbers\n\2", text, flags=re.S)
    assert stale != text
    readme.write_text(stale)

    def run():
        res = subprocess.run(["./run_all.sh", "readme", str(readme)], cwd=REPO, capture_output=True, text=True,
                             timeout=300, env=_env(IMGCLF_NO_VENV="1"))
        assert res.returncode == 0, res.stderr
        return res.stdout.strip().splitlines()[-1]

    assert run() == f"{readme}: updated (result blocks regenerated from results/)"
    assert "stale numbers" not in readme.read_text()
    assert run() == f"{readme}: unchanged (its result blocks already match results/)"


def test_the_environment_is_installed_from_the_lock_and_again_when_the_lock_changes(tmp_path):
    """ensure_venv with a stand-in interpreter that records its calls: pip gets the lock file as
    constraints; a second run installs nothing; a changed lock file installs again."""
    for f in ("run_all.sh", "pyproject.toml", "requirements-lock.txt"):
        shutil.copy(REPO / f, tmp_path / f)
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "fake-python3"
    fake.write_text(f"""#!/usr/bin/env bash
# stands in for python3 and for .venv/bin/python: records its arguments
echo "$*" >> {calls}
if [[ "$1 $2" == "-m venv" ]]; then
  mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; printf 'echo "  imgclf  /k"\\n' > "$3/bin/jupyter"
  chmod +x "$3/bin/jupyter"; printf 'PATH="%s/bin:$PATH"\\n' "$3" > "$3/bin/activate"
  ln -s python "$3/bin/python3"
fi
""")
    fake.chmod(0o755)

    def run():
        res = subprocess.run(["bash", "run_all.sh", "test", "-q"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=60, env=_env(PYTHON=str(fake)))
        assert res.returncode == 0, res.stdout + res.stderr
        return [line for line in calls.read_text().splitlines() if "pip install" in line and "-e" in line]

    assert run() == ["-m pip install -q -c requirements-lock.txt -e .[dev] ./kernel"]
    assert calls.read_text().splitlines()[-1] == "-m pytest -q"  # then the tests run, in that environment
    assert len(run()) == 1  # nothing changed: no second install
    with open(tmp_path / "requirements-lock.txt", "a") as f:
        f.write("tqdm==0.0.0\n")
    assert len(run()) == 2  # the lock changed: installed again


@pytest.mark.parametrize("args, timeout", [
    ((), "3600"),                                   # smoke: an hour per cell catches a hung kernel
    (("--budget", "130"), "11400"),                 # a budget slice: its minutes + 1 h
    (("--profile", "cpu4000"), "86400"),            # a long profile in one go: a cell runs many units
])
def test_the_cell_timeout_outlasts_the_work_a_cell_may_do(tmp_path, args, timeout):
    """A cpu4000 slice once died at the default 3600 s: one cell runs several 40-minute units."""
    shutil.copy(REPO / "run_all.sh", tmp_path / "run_all.sh")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_x.ipynb").write_text("{}")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "papermill").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\nexit 0\n')
    (fake / "papermill").chmod(0o755)
    env = _env(IMGCLF_NO_VENV="1")
    env.pop("IMGCLF_TIMEOUT", None)
    env["PATH"] = f"{fake}{os.pathsep}{env['PATH']}"
    subprocess.run(["bash", "run_all.sh", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    words = (tmp_path / "args").read_text().split()
    assert words[words.index("--execution-timeout") + 1] == timeout
