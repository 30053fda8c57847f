import json
import re

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from imgclf.reports import index, status
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
    status.record_status("good", "ok", 12, "smoke", None, reports=tmp_path)
    status.record_status("bad", "failed", 3, "smoke", str(log), reports=tmp_path)
    page = index.build(tmp_path, tmp_path / "no_results").read_text()
    assert "failed" in page and "parameter &#39;ae_epochs&#39; must be positive" in page
    assert "0.85" in page and "n1" in page
    assert "0.85" in page  # shown from the snapshot of the complete run


def test_not_comparable_run_is_flagged_in_results_and_index(tmp_path):
    rep = Report("nc", {"profile": "smoke", "seed": 0}, root=tmp_path)
    rep.not_comparable("no ImageNet weights: trained from random initialisation")
    rep.finish()
    res = json.loads((tmp_path / "nc" / "results.json").read_text())
    assert res["comparable"] is False and "ImageNet" in res["not_comparable_reason"]
    status.record_status("nc", "ok", 5, "smoke", None, reports=tmp_path)
    page = index.build(tmp_path, tmp_path / "no_results").read_text()
    assert "NOT COMPARABLE with the paper: no ImageNet weights" in page


# ---------------------------------------------------------------------------------------------
# Reports are a boundary: results/ arrives through pull requests, any file may be damaged
# ---------------------------------------------------------------------------------------------
HOSTILE = '"><script>alert(1)</script><img src=x onerror="alert(2)">'


def _no_active_content(page: str, base):
    """No script, no event-handler attribute, no link that leaves ``base`` in ``page``."""
    from urllib.parse import unquote

    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page, "html.parser")
    assert soup.find_all("script") == []
    handlers = [(t.name, a) for t in soup.find_all(True) for a in t.attrs if a.lower().startswith("on")]
    assert handlers == []
    for t in soup.find_all(["a", "img"]):
        url = unquote(t.get("href") or t.get("src"))
        assert not url.startswith(("/", "javascript:", "data:", "file:")), url
        assert (base / url).resolve().is_relative_to(base.resolve()), url


def test_hostile_published_results_are_escaped_and_their_paths_stay_in_their_folder(tmp_path):
    import os

    reports_dir, results_dir = tmp_path / "reports", tmp_path / "results"
    pub = results_dir / "02_fracture_cnn"
    (pub / "figures").mkdir(parents=True)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret")
    evil_name = 'figures/x" onerror="alert(3).png'
    (pub / evil_name).write_bytes(b"\x89PNG")
    os.symlink(secret, pub / "figures" / "link.png")  # a symbolic link out of the folder
    (pub / "results.json").write_text(json.dumps({
        "title": HOSTILE, "profile": "paper", "complete": True, "comparable": False, "not_comparable_reason": HOSTILE,
        "figures": [evil_name, "../../secret.png", str(secret), "figures/link.png", 7, None],
        "captions": {evil_name: HOSTILE},
        "headline": [{"what": HOSTILE, "paper": HOSTILE, "ours": {"mean": HOSTILE}, "note": HOSTILE}, "junk", 3],
        "claims": [{"what": HOSTILE, "a": HOSTILE, "b": "b", "diff_mean": 0.1, "diff_n": 3, "diff_ci95": [0.05, 0.15],
                    "verdict": HOSTILE}],
        "notes": [HOSTILE], "git": {"commit": HOSTILE}, "hardware": {"cpu": HOSTILE, "gpus": [HOSTILE]}, "seed": HOSTILE,
    }))
    page = index.build(reports_dir, results_dir).read_text()
    _no_active_content(page, reports_dir)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as text
    assert not [p for p in (reports_dir / "02_fracture_cnn").rglob("*") if "secret" in p.name]
    assert not (reports_dir / "02_fracture_cnn" / "published" / "figures" / "link.png").exists()
    assert "leaves its folder" in page
    # the one real figure is shown, its name percent-encoded in the URL, and the link resolves
    hrefs = re.findall(r'<img src="([^"]+)"', page)
    assert len(hrefs) == 1 and "%22" in hrefs[0]
    from urllib.parse import unquote
    assert (reports_dir / unquote(hrefs[0])).read_bytes() == b"\x89PNG"  # a copy inside reports/


def test_damaged_status_and_results_files_are_shown_as_damaged_and_never_stop_the_index(tmp_path):
    from test_report_view import fake_run

    reports_dir, results_dir = tmp_path / "reports", tmp_path / "results"
    fake_run(reports_dir, "01_x", "smoke", 0.8123)
    status.record_status("01_x", "ok", 10, "smoke", None, reports=reports_dir)
    st = reports_dir / "status"
    (st / "02_y-smoke.json").write_text('{"name": "02_y", "status": "ok", "prof')  # truncated by a kill
    (st / "03_z-smoke.json").write_text("[1, 2]")
    (st / "04_w-smoke.json").write_bytes(b"\xff\xfe\x00garbage")
    (st / "05_v-smoke.json").write_text(json.dumps({"name": "../../etc", "profile": "smoke", "status": "ok"}))
    (st / "06_u-smoke.json").write_text(json.dumps({"name": "06_u", "profile": "smoke", "status": "failed",
                                                    "log": "../../../etc/passwd", "error": HOSTILE}))
    damaged = reports_dir / "07_t" / "last-smoke"
    damaged.mkdir(parents=True)
    (damaged / "results.json").write_text('{"headline": [{"what": "acc", "pa')
    shape = reports_dir / "08_s" / "last-smoke"
    shape.mkdir(parents=True)
    (shape / "results.json").write_text(json.dumps({"profile": "smoke", "complete": True, "headline": {"what": 1},
                                                    "figures": "figures/a.png", "notes": "one"}))
    (results_dir / "09_r").mkdir(parents=True)
    (results_dir / "09_r" / "results.json").write_text("not json")
    page = index.build(reports_dir, results_dir).read_text()
    _no_active_content(page, reports_dir)
    assert "0.8123" in page  # the whole notebook still shown
    for f in ("02_y-smoke.json", "03_z-smoke.json", "04_w-smoke.json", "05_v-smoke.json"):
        assert f"status/{f}" in page
    assert "not valid JSON" in page and "a JSON list, not an object" in page
    assert "passwd" not in page and "&lt;script&gt;" in page  # no log link out of reports/; the error as text
    assert "07_t/last-smoke/results.json: not valid JSON" in page
    assert "&#39;headline&#39; is a dict, not a list" in page and "&#39;figures&#39; is a str, not a list" in page
    assert "results/09_r/results.json: not valid JSON" in page
    assert page.count("damaged results") == 2


def test_report_pages_escape_what_they_read_and_names_cannot_leave_the_run(tmp_path):
    import nbformat
    import pytest
    from imgclf import render
    from imgclf.reports import display

    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"parameters": {"profile": "smoke"}}
    nb.cells = [nbformat.v4.new_markdown_cell("# T")]
    res = {"profile": "smoke", "complete": True, "finished": HOSTILE, "git": {"commit": HOSTILE},
           "hardware": {"cpu": HOSTILE, "cpu_count": 2, "backend": {"name": HOSTILE}}, "comparable": False,
           "not_comparable_reason": HOSTILE}
    page = render.render_report(nb, tmp_path / "07_demo.smoke.html", res=res).read_text()
    from bs4 import BeautifulSoup

    bar = BeautifulSoup(page, "html.parser").find(class_="imgclf-run")
    assert {t.name for t in bar.find_all(True)} == {"span"}  # the hostile values made no element
    assert all(set(t.attrs) <= {"class"} for t in bar.find_all(True))
    assert "<script>alert(1)</script>" in bar.get_text()  # shown as text
    sty = display.styled_comparison(pd.DataFrame({"paper": [0.9], "ours": [HOSTILE]}, index=[HOSTILE]), HOSTILE).to_html()
    assert "<script>" not in sty and "<img" not in sty
    rep = Report("nb", {"profile": "smoke", "seed": 0}, root=tmp_path)
    fig, _ = plt.subplots()
    for bad in ("../../escape", 'x" onerror="y', "/abs"):
        with pytest.raises(ValueError):
            rep.figure(fig, bad)
        with pytest.raises(ValueError):
            rep.table(pd.DataFrame({"a": [1]}), bad)
    assert not (tmp_path / "escape.png").exists()


def test_paper_columns_match_by_name_then_by_place():
    """Our Table 2 columns stand for the paper's of the same setting, else the one at their place: a
    CPU profile that runs the paper's first and third settings must not be compared with its second."""
    from imgclf.reports import paper_columns

    paper = ["4000/1000, 5 epochs", "4000/1000, 20 epochs", "60000/10000, 5 epochs"]
    assert paper_columns(["4000/1000, 5 epochs", "60000/10000, 5 epochs"], paper) == {
        "4000/1000, 5 epochs": "4000/1000, 5 epochs", "60000/10000, 5 epochs": "60000/10000, 5 epochs"}
    smoke = ["200/100, 1 epochs", "200/100, 2 epochs", "300/100, 1 epochs"]
    assert paper_columns(smoke, paper) == dict(zip(smoke, paper))  # stand-ins: by place
    with pytest.raises(ValueError, match="4 columns for the paper's 3"):
        paper_columns([*smoke, "1/1, 1 epochs"], paper)


def test_history_marks_values_measured_after_training_and_reference_levels():
    from imgclf import plots

    hist = {"accuracy": [0.2, 0.4, 0.6], "val_accuracy": [0.2, 0.2, 0.2], "loss": [2.0, 1.5, 1.0], "val_loss": [2, 2, 2]}
    fig = plots.history(hist, title="base (1350 images)", final={"held back, recalibrated": 0.5},
                        lines={"majority": 0.25})
    acc, loss = fig.axes
    assert fig.get_suptitle() == "base (1350 images)"  # once, above both panels
    assert acc.get_legend_handles_labels()[1] == ["train", "validation", "majority", "held back, recalibrated"]
    star = next(line for line in acc.lines if line.get_label() == "held back, recalibrated")
    assert list(star.get_xdata()) == [3] and list(star.get_ydata()) == [0.5]  # at the last epoch
    assert loss.get_legend_handles_labels()[1] == ["train", "validation"]  # marks on the first panel only
    plt.close(fig)
