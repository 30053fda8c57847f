"""``./run_all.sh bank`` / ``restore``: the units a slice finished travel in git to a fresh clone,
where the next slice reuses them and computes only the rest."""

import json

import pytest

from imgclf.reports import Report, bank, publish, status
from imgclf.runs import Runs

pytestmark = pytest.mark.portable  # no TensorFlow here: runs under every Keras backend

NB = "03_mnist_deep_cnns"
CALLS: list[int] = []


def square(x: int) -> dict:
    """A stand-in for a training run: counts its calls."""
    CALLS.append(x)
    return {"x": x, "accuracy": x * x / 100}


def slice_run(reports, xs, only=None, profile="cpu32"):
    """One slice of a notebook run: the units of ``xs`` in order until the first one not in
    ``only``, where the budget is spent; the run recorded as run_all.sh records it."""
    rep = Report(NB, {"profile": profile, "seed": 0}, root=reports)
    rep.runs = Runs(reports / NB / "runs", log=lambda s: None)
    out = {}
    for x in xs:
        if only is not None and x not in only:
            rep.runs.budget_minutes = 0  # spent: this unit and the rest are not started
        out[x] = rep.runs.cached(square, name=f"unit {x}", x=x)
    rep.headline("accuracy", 0.9, 0.5)
    rep.finish()
    status.record_status(NB, "ok", 1, profile, None, reports=reports)
    return out


def test_banked_units_are_reused_on_a_fresh_clone_and_only_the_rest_is_computed(tmp_path):
    here, results = tmp_path / "machine1" / "reports", tmp_path / "results"
    CALLS.clear()
    slice_run(here, [1, 2, 3], only={1, 2})
    assert CALLS == [1, 2]
    path, what = bank.bank_one(NB, "cpu32", here, results)
    assert path == results / NB / "banked-cpu32.json" and "2 finished units banked (2 new)" in what
    recs = json.loads(path.read_text())
    assert [r["result"]["x"] for r in recs] == [1, 2] and all(r["hardware"]["cpu_count"] for r in recs)

    # another machine: a fresh clone has results/ only
    there = tmp_path / "machine2" / "reports"
    assert bank.restore_one(NB, there, results) == (2, 0)
    rec = json.loads(next((there / NB / "runs").glob("unit-1-*/result.json")).read_text())
    assert rec["restored_from"] == f"results/{NB}/banked-cpu32.json" and rec["result"] == {"x": 1, "accuracy": 0.01}
    CALLS.clear()
    out = slice_run(there, [1, 2, 3])
    assert CALLS == [3] and out[1] == {"x": 1, "accuracy": 0.01}  # units 1 and 2 reused, 3 computed
    assert bank.restore_one(NB, there, results) == (0, 2)  # never overwrites a record that is there

    # banking again merges: all three units, the run now complete
    path, what = bank.bank_one(NB, "cpu32", there, results)
    assert "3 finished units banked (1 new)" in what and len(json.loads(path.read_text())) == 3


def test_a_banked_record_is_only_reused_by_the_same_call(tmp_path):
    here, results = tmp_path / "a" / "reports", tmp_path / "results"
    CALLS.clear()
    slice_run(here, [4])
    bank.bank_one(NB, "cpu32", here, results)
    recs = json.loads((results / NB / "banked-cpu32.json").read_text())
    recs[0]["key"] = recs[0]["key"].replace("unit-4", "unit-5")  # banked under another call's name
    (results / NB / "banked-cpu32.json").write_text(json.dumps(recs))
    there = tmp_path / "b" / "reports"
    bank.restore_one(NB, there, results)
    CALLS.clear()
    slice_run(there, [4])
    assert CALLS == [4]  # unit 4's own key has no record there: computed, not taken from another


def test_publishing_a_complete_run_replaces_its_own_bank_and_keeps_other_profiles(tmp_path):
    reports, results = tmp_path / "reports", tmp_path / "results"
    slice_run(reports, [6, 7], only={6}, profile="paper")
    bank.bank_one(NB, "paper", reports, results)
    slice_run(reports, [6, 7], only={6})
    bank.bank_one(NB, "cpu32", reports, results)
    slice_run(reports, [6, 7])  # cpu32 complete: published
    dst, what = publish.publish_one(NB, reports, results, "cpu32")
    assert dst is not None, what
    assert not (dst / "banked-cpu32.json").exists() and (dst / "banked-paper.json").is_file()
    units = json.loads((dst / "units.json").read_text())
    assert sorted(u["result"]["x"] for u in units) == [6, 7]
    # the published units restore like banked ones
    # (unit 6 is in both files: the same call, so the same key, written once)
    assert bank.restore_one(NB, tmp_path / "fresh", results) == (2, 1)


def test_unit_records_are_one_line_each_and_read_back_whole():
    recs = [{"key": "a-1-2", "result": {"y_pred": list(range(1000)), "x": 0.5}}, {"key": "b-1-2", "result": {"x": 1}}]
    text = publish.records_json(recs)
    assert json.loads(text) == recs and len(text.splitlines()) == 4
