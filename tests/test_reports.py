import json

import matplotlib.pyplot as plt
import pandas as pd
from imgclf import index
from imgclf.reports import Report


def test_report_writes_tables_figures_and_results(tmp_path):
    rep = Report("nb", {"profile": "smoke", "seed": 1}, root=tmp_path, title="T")
    rep.table(pd.DataFrame({"a": [1.0]}), "t1")
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    rep.figure(fig, "f1")
    rep.headline("acc", 0.9, 0.8)
    rep.note("synthetic")
    # the run in progress writes into running/; there is no complete run yet, so no results.json
    res = json.loads((tmp_path / "nb" / "running" / "results.json").read_text())
    assert res["complete"] is False and res["headline"][0]["ours"] == 0.8
    assert not (tmp_path / "nb" / "results.json").exists()
    rep.finish()
    res = json.loads((tmp_path / "nb" / "results.json").read_text())
    assert res["complete"] is True and res["tables"] == ["t1.csv"] and res["figures"] == ["figures/f1.png"]
    assert (tmp_path / "nb" / "figures" / "f1.png").read_bytes()[:4] == b"\x89PNG"
    assert "hardware" in res and res["seed"] == 1
    assert not list((tmp_path / "nb").rglob("*.part"))  # no half-written file left behind
    assert not (tmp_path / "nb" / "running").exists()  # promoted


def test_index_marks_failures_with_their_error(tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "results.json").write_text(json.dumps(
        {"title": "Good", "profile": "smoke", "complete": True,
         "headline": [{"what": "acc", "paper": 0.9, "ours": 0.85}], "notes": ["n1"]}))
    log = tmp_path / "bad.log"
    log.write_text("Executing\n---\nTraceback...\nimgclf.config.ParameterError: parameter 'ae_epochs' must be positive\n")
    index.record_status("good", "ok", 12, "smoke", None, reports=tmp_path)
    index.record_status("bad", "failed", 3, "smoke", str(log), reports=tmp_path)
    page = index.build(reports=tmp_path).read_text()
    assert "failed" in page and "parameter &#x27;ae_epochs&#x27; must be positive" in page
    assert "0.85" in page and "n1" in page
    assert "0.85" in page  # shown from the snapshot of the complete run


def test_not_comparable_run_is_flagged_in_results_and_index(tmp_path):
    rep = Report("nc", {"profile": "smoke", "seed": 0}, root=tmp_path)
    rep.not_comparable("no ImageNet weights: trained from random initialisation")
    rep.finish()
    res = json.loads((tmp_path / "nc" / "results.json").read_text())
    assert res["comparable"] is False and "ImageNet" in res["not_comparable_reason"]
    index.record_status("nc", "ok", 5, "smoke", None, reports=tmp_path)
    page = index.build(reports=tmp_path).read_text()
    assert "NOT COMPARABLE with the paper: no ImageNet weights" in page
