"""``./run_all.sh reproduce``: the unit it picks, how it compares, and its yes/no (the notebook run
itself is replaced by a stand-in that writes the unit record a notebook would)."""

import json
import subprocess

import pytest

from imgclf.reports import reproduce
from imgclf.reports.publish import unit_records

NB = "02_fracture_cnn"
UNITS = [
    {"name": "fit_model", "key": "fit-model-aaaaaaaaaa-11111111", "seconds": 300.0, "commit": "c0",
     "result": {"acc": 0.75, "history": {"loss": [0.7, 0.5]}}},
    {"name": "fit_model", "key": "fit-model-bbbbbbbbbb-11111111", "seconds": 120.5, "commit": "c0",
     "result": {"acc": 0.7012345, "kappa": 0.3, "history": {"loss": [0.69, 0.52]}, "label": "plain"}},
]


def test_compare_finds_every_number_and_each_difference():
    pub = UNITS[1]["result"]
    numbers, diffs = reproduce.compare(pub, json.loads(json.dumps(pub)))
    assert [p for p, _, _ in numbers] == ["acc", "kappa", "history.loss[0]", "history.loss[1]"] and diffs == []
    now = {**pub, "acc": 0.7012345 + 1e-12, "history": {"loss": [0.69, 0.5201]}, "label": "resnet"}
    _, diffs = reproduce.compare(pub, now)  # 1e-12 is within tolerance; 1e-4 and a changed label are not
    assert [p for p, _, _ in diffs] == ["history.loss[1]", "label"]
    _, diffs = reproduce.compare(pub, {k: v for k, v in pub.items() if k != "kappa"})
    assert diffs == [("kappa", 0.3, "<absent>")]
    timed = {"acc": 0.5, "hist": {"wall": [1.0, 2.0], "epoch_time": [1.0], "seconds": 3.0}, "fit_seconds": 2.0}
    numbers, diffs = reproduce.compare(timed, {"acc": 0.5, "hist": {"wall": [1.5, 2.5], "epoch_time": [1.2], "seconds": 3.3},
                                               "fit_seconds": 2.2})
    assert [p for p, _, _ in numbers] == ["acc"] and diffs == []  # wall-clock times measure the machine


def test_pick_takes_the_cheapest_unit_or_the_named_one():
    assert reproduce.pick(UNITS, None)["key"] == UNITS[1]["key"]
    assert reproduce.pick(UNITS, "fit-model-aaaaaaaaaa")["key"] == UNITS[0]["key"]  # key without code hash
    with pytest.raises(SystemExit, match="no published unit is named 'nope'"):
        reproduce.pick(UNITS, "nope")


def _published(tmp_path):
    results = tmp_path / "results"
    (results / NB).mkdir(parents=True)
    (results / NB / "results.json").write_text(json.dumps({"notebook": NB, "profile": "paper", "seed": 0,
                                                           "complete": True}))
    (results / NB / "units.json").write_text(json.dumps(UNITS))
    return results


def _fake_notebook(monkeypatch, result, key=UNITS[1]["key"]):
    """papermill replaced by writing the record the notebook's one unit would write."""
    seen = {}

    def run(cmd, **kw):
        params = json.loads(cmd[cmd.index("-y") + 1])
        seen.update(params)
        if result is not None:
            d = __import__("pathlib").Path(params["reports_root"]) / NB / "runs" / key
            d.mkdir(parents=True)
            (d / "result.json").write_text(json.dumps({"key": key, "result": result, "seconds": 1.0, "commit": "c1"}))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(reproduce.subprocess, "run", run)
    return seen


def test_reproduce_says_yes_for_the_same_numbers_and_no_otherwise(tmp_path, monkeypatch, capsys):
    results = _published(tmp_path)
    seen = _fake_notebook(monkeypatch, UNITS[1]["result"])
    assert reproduce.main("02", None, tmp_path / "reports", results) == 0
    out = capsys.readouterr().out
    assert "reproduced: yes" in out and "0.7012345" in out
    assert seen["runs_only"] == "fit-model-bbbbbbbbbb" and seen["profile"] == "paper" and seen["seed"] == 0

    _fake_notebook(monkeypatch, {**UNITS[1]["result"], "acc": 0.71})
    assert reproduce.main("02", None, tmp_path / "reports", results) == 1
    out = capsys.readouterr().out
    assert "reproduced: no" in out and "DIFFERS acc" in out

    _fake_notebook(monkeypatch, None)  # the notebook never made the call
    assert reproduce.main("02", None, tmp_path / "reports", results) == 1
    assert "reproduced: no" in capsys.readouterr().out


def test_reproduce_notes_changed_code_and_still_compares_the_call(tmp_path, monkeypatch, capsys):
    results = _published(tmp_path)
    _fake_notebook(monkeypatch, UNITS[1]["result"], key="fit-model-bbbbbbbbbb-22222222")
    assert reproduce.main("02", None, tmp_path / "reports", results) == 0
    assert "the code changed since the published run" in capsys.readouterr().out


def test_publish_keeps_the_record_of_every_unit_the_run_used(tmp_path):
    runs = tmp_path / "runs"
    (runs / "u-1-a").mkdir(parents=True)
    (runs / "u-1-a" / "result.json").write_text(json.dumps({"key": "u-1-a", "result": {"x": 1}, "hardware": {}}))
    res = {"runs": {"units": [{"name": "u", "key": "u-1-a"}, {"name": "v", "key": "v-2-b"}]}}
    got = unit_records(res, runs)
    assert got[0] == {"key": "u-1-a", "result": {"x": 1}} and got[1]["result"] is None and "missing" in got[1]
