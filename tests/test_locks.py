"""Two runs at once, with real processes: a second run of one notebook is refused while the first
holds its report folder and accepted once the first is killed (SIGKILL); two processes asking for
the same run unit compute it once, the other waits and reuses the whole record."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from imgclf import locks

LIB = str(Path(__file__).resolve().parents[1] / "lib")

# A Report in a child process; hardware() and git are stubbed (they import TensorFlow, slow here).
REPORT_CHILD = textwrap.dedent("""
    import sys, time
    from imgclf import locks, reports
    from imgclf.reports import report as _report
    _report.hardware = lambda: {}
    _report.git_provenance = lambda repo=None: {"commit": None, "dirty": None}
    _report.environment = lambda: {}
    import pandas as pd
    root, tag, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    try:
        r = reports.Report("01_nb", {"profile": "smoke", "seed": 0}, root=root)
    except locks.NotebookBusy as e:
        print("BUSY:", e, flush=True)
        sys.exit(3)
    r.table(pd.DataFrame({"who": [tag]}), f"table_{tag}")
    print("HOLDING", flush=True)
    if mode == "hold":
        time.sleep(600)
    r.finish()
    print("FINISHED", flush=True)
""")


def _env():
    return {**os.environ, "PYTHONPATH": LIB + os.pathsep + os.environ.get("PYTHONPATH", ""), "MPLBACKEND": "Agg"}


def _child(root, tag, mode, **kw):
    return subprocess.Popen([sys.executable, "-c", REPORT_CHILD, str(root), tag, mode], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(proc, word, timeout=120):
    t0 = time.time()
    lines = []
    while time.time() - t0 < timeout:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if word in line:
            return line
    raise AssertionError(f"child never said {word!r}: {lines} {proc.stderr.read() if proc.poll() is not None else ''}")


def test_second_run_of_a_notebook_is_refused_then_accepted_after_the_holder_is_killed(tmp_path):
    first = _child(tmp_path, "first", "hold")
    try:
        _wait_for(first, "HOLDING")
        second = subprocess.run([sys.executable, "-c", REPORT_CHILD, str(tmp_path), "second", "finish"], env=_env(),
                                capture_output=True, text=True, timeout=180)
        assert second.returncode == 3, second.stdout + second.stderr
        msg = second.stdout
        # the message names the running one: pid, host, start time, and the lock file
        assert f"pid {first.pid} on host {os.uname().nodename}" in msg and "started 20" in msg
        assert "notebook 01_nb is already running into" in msg and str(tmp_path / ".locks" / "01_nb.lock") in msg
        assert (tmp_path / "01_nb" / "running" / "table_first.csv").is_file()  # the first run's files untouched
        assert not (tmp_path / "01_nb" / "results.json").exists()
    finally:
        first.send_signal(signal.SIGKILL)  # a crash: no finally, no atexit; the kernel drops the flock
        first.wait()
    third = subprocess.run([sys.executable, "-c", REPORT_CHILD, str(tmp_path), "third", "finish"], env=_env(),
                           capture_output=True, text=True, timeout=180)
    assert third.returncode == 0 and "FINISHED" in third.stdout, third.stdout + third.stderr
    res = json.loads((tmp_path / "01_nb" / "results.json").read_text())
    assert res["tables"] == ["table_third.csv"] and res["complete"] is True  # no file of the killed run mixed in
    assert sorted(p.name for p in (tmp_path / "01_nb").glob("*.csv")) == ["table_third.csv"]
    assert not (tmp_path / "01_nb" / "running").exists()


def test_a_finished_run_gives_the_lock_back_and_late_saves_still_reach_results(tmp_path, monkeypatch):
    from imgclf import reports

    monkeypatch.setattr(reports, "hardware", lambda: {})
    r = reports.Report("02_nb", {"profile": "smoke"}, root=tmp_path)
    assert locks.held_here(tmp_path / "02_nb")
    r.finish()
    assert not locks.held_here(tmp_path / "02_nb")
    # another process may run the notebook now
    other = subprocess.run([sys.executable, "-c", REPORT_CHILD.replace("01_nb", "02_nb"), str(tmp_path), "b", "finish"],
                           env=_env(), capture_output=True, text=True, timeout=180)
    assert other.returncode == 0, other.stdout + other.stderr
    r.note("added after finish")  # takes the lock for an instant, promotes
    assert "added after finish" in json.loads((tmp_path / "02_nb" / "results.json").read_text())["notes"]
    assert not locks.held_here(tmp_path / "02_nb")


def test_rerunning_the_setup_cell_in_one_process_replaces_the_run_and_the_old_report_cannot_write(tmp_path, monkeypatch):
    from imgclf import reports

    monkeypatch.setattr(reports, "hardware", lambda: {})
    old = reports.Report("03_nb", {}, root=tmp_path)
    new = reports.Report("03_nb", {}, root=tmp_path)  # the same kernel: no refusal, the lock moves over
    assert locks.held_here(tmp_path / "03_nb") and new._lock.held and not old._lock.held
    with pytest.raises(locks.NotebookBusy, match="replaced by a newer run"):
        old.metric("x", 1)  # would write into the new run's running/ folder
    new.finish()


def test_lock_check_command_and_busy(tmp_path):
    holder = _child(tmp_path, "h", "hold")
    try:
        _wait_for(holder, "HOLDING")
        info = locks.busy(tmp_path / "01_nb")
        assert info is not None and info["pid"] == holder.pid
        cmd = subprocess.run([sys.executable, "-m", "imgclf.locks", "check", str(tmp_path / "01_nb")], env=_env(),
                             capture_output=True, text=True, timeout=60)
        assert cmd.returncode == 1 and f"pid {holder.pid}" in cmd.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert locks.busy(tmp_path / "01_nb") is None
    assert subprocess.run([sys.executable, "-m", "imgclf.locks", "check", str(tmp_path / "01_nb")], env=_env(),
                          timeout=60).returncode == 0


# -- run units: two processes, one unit --------------------------------------------------------
UNIT_MODULE = textwrap.dedent("""
    import os, time
    from pathlib import Path

    def slow_unit(n, calls):
        with open(calls, "a") as f:
            f.write(f"{os.getpid()}\\n")
        Path(calls + ".started").write_text("x")
        time.sleep(3)
        return {"values": list(range(n)), "pid": os.getpid()}
""")

UNIT_CHILD = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, sys.argv[3])
    import unitmod
    from imgclf.runs import Runs
    root, calls = sys.argv[1], sys.argv[2]
    t0 = time.time()
    logs = []
    res = Runs(root, log=logs.append).cached(unitmod.slow_unit, n=20000, calls=calls)
    print(json.dumps({"pid_result": res["pid"], "n": len(res["values"]), "logs": logs, "seconds": time.time() - t0}))
""")


def test_two_processes_asking_for_one_unit_compute_it_once(tmp_path):
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "unitmod.py").write_text(UNIT_MODULE)
    calls = str(tmp_path / "calls.txt")
    args = [sys.executable, "-c", UNIT_CHILD, str(tmp_path / "runs"), calls, str(tmp_path / "mod")]
    a = subprocess.Popen(args, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not Path(calls + ".started").exists():  # a computes (and holds the unit's lock) now
        assert time.time() - t0 < 120 and a.poll() is None, a.stderr.read() if a.poll() is not None else "slow"
        time.sleep(0.05)
    b = subprocess.Popen(args, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_a, err_a = a.communicate(timeout=180)
    out_b, err_b = b.communicate(timeout=180)
    assert a.returncode == 0 and b.returncode == 0, err_a + err_b
    ra, rb = json.loads(out_a), json.loads(out_b)
    assert Path(calls).read_text().split() == [str(a.pid)]  # the function ran once, in a
    assert ra["pid_result"] == rb["pid_result"] == a.pid and ra["n"] == rb["n"] == 20000
    assert any("waiting for" in line and f"pid {a.pid}" in line for line in rb["logs"]), rb["logs"]
    assert any(line.startswith("[runs] reused") for line in rb["logs"])
    unit_dirs = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert len(unit_dirs) == 1
    rec = json.loads((unit_dirs[0] / "result.json").read_text())  # whole, and of its key
    assert rec["key"] == unit_dirs[0].name and len(rec["result"]["values"]) == 20000
