"""Log noise (issue 22, point 5): TensorFlow is quiet at the source (``import imgclf``, the
kernelspec), a user's log level wins, and the library's ``[runs]`` messages are INFO log records
shown by default and hidden by one ``setLevel`` call."""

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from imgclf import logs
from imgclf.runs import Runs

REPO = Path(__file__).resolve().parents[1]
CPP_LOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d|absl::InitializeLog|oneDNN|cpu_feature_guard|cuda", re.M)


def _python(code, **env_changes):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=str(REPO / "lib"), **env_changes)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)


def test_tensorflow_says_nothing_on_stderr_after_import_imgclf():
    """Loading TensorFlow, and asking it for a GPU (an E-level "failed call to cuInit" on a machine
    without one): nothing of TensorFlow's C++ logging reaches stderr."""
    res = _python("import os, imgclf, keras, tensorflow as tf; tf.config.list_physical_devices('GPU'); "
                  "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])")
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["3"]
    assert not CPP_LOG.search(res.stderr), res.stderr[-2000:]


def test_a_log_level_the_user_set_is_kept_and_nothing_is_captured():
    res = _python("import os, sys, imgclf, imgclf.logs as l; "
                  "print(os.environ['TF_CPP_MIN_LOG_LEVEL'], any(isinstance(f, l._QuietImport) for f in sys.meta_path))",
                  TF_CPP_MIN_LOG_LEVEL="0")
    assert res.stdout.split() == ["0", "False"], res.stderr


def test_the_kernelspec_sets_the_same_environment():
    spec = json.loads((REPO / "kernel" / "kernel.json").read_text())
    assert spec["env"] == logs.TF_ENV_DEFAULTS and spec["display_name"] == "Python (imgclf)"


def test_captured_stderr_logs_at_debug_and_gives_it_back_on_an_error(capfd, caplog):
    with caplog.at_level(logging.DEBUG, logger="imgclf.demo"):
        with logs.captured_stderr("demo"):
            os.write(2, b"I0000 noise from C\n")
    assert capfd.readouterr().err == "" and "I0000 noise from C" in caplog.text
    with pytest.raises(ImportError):
        with logs.captured_stderr("demo"):
            os.write(2, b"libfoo.so: cannot open shared object file\n")
            raise ImportError("libfoo")
    assert "libfoo.so: cannot open" in capfd.readouterr().err


@pytest.fixture
def imgclf_logger():
    """The imgclf logger as ``import imgclf`` left it (restored after the test), with logging not
    configured, as in a notebook: no handler on the root logger (pytest adds its own for the test's
    call phase: they are removed in the test by :func:`_unconfigured`)."""
    log, root = logging.getLogger("imgclf"), logging.getLogger()
    level, handlers = log.level, list(root.handlers)
    yield log
    log.setLevel(level)
    root.handlers = handlers


def _unconfigured():
    logging.getLogger().handlers = []


def test_runs_messages_show_by_default_and_one_call_hides_them(tmp_path, capsys, imgclf_logger):
    _unconfigured()
    assert imgclf_logger.getEffectiveLevel() == logging.INFO
    Runs(tmp_path).cached(lambda: {"a": 1}, name="demo")
    out = capsys.readouterr().out
    assert re.fullmatch(r"\[runs\] running demo \(demo-[0-9a-f]+-[0-9a-f]+\)\n", out), out
    imgclf_logger.setLevel("WARNING")
    Runs(tmp_path, reuse=False).cached(lambda: {"a": 1}, name="demo")
    assert capsys.readouterr().out == ""


def test_with_logging_configured_the_messages_go_there_once(tmp_path, capsys, imgclf_logger):
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    _unconfigured()
    logging.getLogger().addHandler(Keep())
    Runs(tmp_path).cached(lambda: {"a": 1}, name="demo")
    assert capsys.readouterr().out == ""  # not printed a second time by imgclf's default handler
    assert len(records) == 1 and records[0].startswith("[runs] running demo")


@pytest.mark.notebook
def test_in_a_notebook_runs_messages_show_and_tensorflow_is_silent(tmp_path):
    """The imgclf kernel, started by papermill as JupyterLab starts it: the [runs] line is a stdout
    output of the cell, and nothing of TensorFlow's C++ logging reaches the kernel's stderr (where
    Jupyter shows it) or the cell's outputs."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "imgclf", "language": "python",
                                                           "display_name": "Python (imgclf)"}})
    nb.cells = [nbformat.v4.new_code_cell(
        "import imgclf, keras, tensorflow as tf\n"
        "tf.config.list_physical_devices('GPU')\n"
        f"from imgclf.runs import Runs\nRuns({str(tmp_path / 'runs')!r}).cached(lambda: {{'a': 1}}, name='demo')\n"
        "print('done')")]
    nbformat.write(nb, tmp_path / "in.ipynb")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # a kernel started without it
    env.update(PYTHONPATH=str(REPO / "lib"), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    res = subprocess.run(["papermill", "-k", "imgclf", "--no-progress-bar", "in.ipynb", "out.ipynb"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert not CPP_LOG.search(res.stderr), res.stderr[-3000:]
    outputs = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert not CPP_LOG.search(text) and not [o for o in outputs if o.get("name") == "stderr"], outputs
    assert re.search(r"^\[runs\] running demo \(demo-[0-9a-f]+-[0-9a-f]+\)$", text, re.M) and text.rstrip().endswith("done"), text
