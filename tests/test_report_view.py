"""The report a reader sees: noise filtering, captions, coloured deltas, figure display, provenance,
the index (stale, partial, paper beside smoke, results/ fallback), publishing and README tables."""

import base64
import json
import re
import subprocess

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgclf import render, reports
from imgclf.reports import display, index, publish, status
from imgclf.reports import Report

ABSL = ("E0000 00:00:1795607863.028397    9616 node_def_util.cc:682] NodeDef mentions attribute "
        "use_unbounded_threadpool which is not in the op definition: Op<name=MapDataset; ...>")
CUINIT = ("E0000 00:00:1795607861.914047    9616 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
          "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)")
ONEDNN = ("I0000 00:00:1732534461.123456   12345 port.cc:153] oneDNN custom operations are on. You may see "
          "slightly different numerical results due to floating-point round-off errors.")
TQDM = "\r" + "\r".join(f"AE MNIST:  {p}%|{'#' * (p // 10):<10}| {p // 20}/5 [00:0{p // 20}<00:04, 1.0s/it, loss=0.1]"
                        for p in (0, 20, 40, 100))
KEEP = ["NOT COMPARABLE with the paper: no ImageNet weights", "ResNet-18 lr=0.01 stayed at chance (loss 2.303)",
        "fallback: no GPU, running on the CPU", "k-NN on the random initial kernels: 0.7700"]


def test_clean_text_drops_library_noise_and_keeps_what_a_reader_needs():
    text = "\n".join([
        ABSL, KEEP[0], CUINIT, ONEDNN,
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        TQDM, KEEP[1],
        "/x/.venv/lib/python3.11/site-packages/keras/src/layers/core/dense.py:93: UserWarning: Do not pass an input_shape",
        "  super().__init__(activity_regularizer=activity_regularizer, **kwargs)",
        "Epoch 1/5", "3/3 ━━━━━━━━━━━━━━━━━━━━ 0s 2ms/step - loss: 0.3",
        "CMA-ES layer 1 gen   10/100  best 0.9333  mean 0.9000  best so far 0.9333  elapsed    12.0s",
        KEEP[2], KEEP[3],
    ]) + "\n"
    out, dropped = render.clean_text(text)
    assert out.splitlines() == KEEP
    assert dropped == 10  # TQDM's frames count as the one line a terminal shows
    assert out.endswith("\n")
    assert render.clean_text("plain print\nno newline")[0] == "plain print\nno newline"


def test_clean_notebook_drops_emptied_stream_outputs_and_keeps_others():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=ABSL + "\n" + CUINIT + "\n"),
                    nbformat.v4.new_output("stream", name="stdout", text=TQDM + "\n" + KEEP[0] + "\n"),
                    nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "fig"})]
    nb.cells = [cell]
    assert render.clean_notebook(nb) == 3
    assert [o["output_type"] for o in cell.outputs] == ["stream", "display_data"]
    assert cell.outputs[0]["text"] == KEEP[0] + "\n"


@pytest.mark.parametrize("name,ref", [
    ("fig8_accuracy", "Figure 8"), ("fig11_gradcam", "Figure 11"), ("fig4_5_mobilenet_cv_curves", "Figures 4–5"),
    ("table1_paper_vs_ours", "Table 1"), ("tables2_5_param_counts", "Tables 2–5"), ("fig10_mobilenet_roc", "Figure 10"),
    ("confusion_A", None), ("roc", None), ("fitness_random_start", None), ("figure_of_merit", None),
])
def test_paper_reference_from_the_figure_name(name, ref):
    assert reports.paper_reference(name) == ref
    cap = reports.default_caption(name)
    assert (cap.startswith(f"{ref} of the paper, regenerated") if ref else cap.startswith("Our figure"))


def test_comparison_gets_a_delta_coloured_by_sign_and_size(tmp_path):
    df = pd.DataFrame({"paper": [0.90, 0.90, 0.50, "n/a"], "ours": [0.95, 0.60, 0.50, 0.7]}, index=list("abcd"))
    rep = Report("cmp", {"profile": "smoke", "seed": 0}, root=tmp_path)
    out = rep.comparison(df, "table3_paper_vs_ours")
    assert list(out.columns) == ["paper", "ours", "ours - paper"]
    assert out["ours - paper"].round(6).tolist()[:3] == [0.05, -0.3, 0.0] and np.isnan(out["ours - paper"].iloc[3])
    saved = json.loads((rep.run_dir / "results.json").read_text())["comparisons"]["table3_paper_vs_ours"]
    assert "ours - paper" in saved[0]
    up, down, zero = (reports.delta_style(d, 0.9) for d in (0.05, -0.3, 0.0))
    assert "33,102,172" in up and "178,24,43" in down and zero == ""
    alpha = lambda css: float(re.search(r"rgba\([\d,]+,([\d.]+)\)", css).group(1))  # noqa: E731
    assert alpha(reports.delta_style(-0.3, 0.9)) > alpha(reports.delta_style(-0.03, 0.9))
    html = reports.styled_comparison(out, "Table 3 of the paper vs ours").to_html()
    assert "+0.05" in html and "-0.3" in html and "rgba(178,24,43" in html and "Table 3 of the paper vs ours" in html


def test_figure_is_displayed_once_as_the_saved_png_with_its_caption_and_closed(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(display, "in_kernel", lambda: True)
    monkeypatch.setattr(display, "show", lambda bundle, metadata=None: shown.append((bundle, metadata)))
    rep = Report("nb", {"profile": "smoke", "seed": 0}, root=tmp_path)
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    rep.figure(fig, "fig8_accuracy")
    images = [(b, m) for b, m in shown if "image/png" in b]
    assert len(images) == 1 and images[0][1] == {"imgclf": {"figure": "figures/fig8_accuracy.png"}}
    import base64
    assert base64.b64decode(images[0][0]["image/png"]) == (rep.run_dir / "figures" / "fig8_accuracy.png").read_bytes()
    captions = [b["text/html"] for b, _ in shown if "text/html" in b]
    assert len(captions) == 1 and "Figure 8 of the paper, regenerated: accuracy" in captions[0]
    assert fig.number not in plt.get_fignums()  # no backend can show it a second time
    res = json.loads((rep.run_dir / "results.json").read_text())  # the run in progress
    assert res["captions"]["figures/fig8_accuracy.png"].startswith("Figure 8")
    fig2, _ = plt.subplots()
    rep.figure(fig2, "confusion_A", caption="Confusion matrix of run A (the paper shows none)")
    assert "run A (the paper shows none)" in [b["text/html"] for b, _ in shown if "text/html" in b][-1]


def test_git_provenance_names_the_commit_and_whether_the_tree_is_dirty(tmp_path):
    assert reports.git_provenance(tmp_path) == {"commit": None, "dirty": None}
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / "f.txt").write_text("1")
    git("add", "f.txt")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x")
    sha = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert reports.git_provenance(tmp_path) == {"commit": sha, "dirty": False}
    (tmp_path / "results").mkdir()  # a published result changes no code: still clean
    (tmp_path / "results" / "r.json").write_text("1")
    git("add", "results/r.json")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "y")
    sha = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    (tmp_path / "results" / "r.json").write_text("2")
    assert reports.git_provenance(tmp_path) == {"commit": sha, "dirty": False}
    (tmp_path / "f.txt").write_text("2")
    assert reports.git_provenance(tmp_path) == {"commit": sha, "dirty": True}


# ---------------------------------------------------------------------------------------------
# index, publish, README
# ---------------------------------------------------------------------------------------------
def fake_run(reports_dir, name, profile, ours, figures=("fig8_accuracy",), size=(300, 200), **extra):
    """A finished notebook run as Report writes it: results.json, one table, figures."""
    rep = Report(name, {"profile": profile, "seed": 0}, root=reports_dir, title=f"Title {name}")
    for f in figures:
        fig, ax = plt.subplots(figsize=(size[0] / 100, size[1] / 100), dpi=100)
        ax.imshow(np.random.default_rng(0).random((64, 64)))
        rep.figure(fig, f)
    rep.table(pd.DataFrame({"a": [ours]}), "t1")
    rep.headline("accuracy", 0.9, ours, "note")
    rep.results.update(extra)
    rep.finish()
    return rep


def test_index_marks_a_stale_row_when_the_latest_run_failed(tmp_path):
    reports_dir, results_dir = tmp_path / "reports", tmp_path / "results"
    fake_run(reports_dir, "01_x", "smoke", 0.8123)
    status.record_status("01_x", "ok", 10, "smoke", None, reports=reports_dir)
    page = index.build(reports_dir, results_dir).read_text()
    assert "0.8123" in page and "stale" not in page.split("</p>", 1)[1]
    # the next run fails half-way: its partial results.json must not replace the numbers shown
    rep = Report("01_x", {"profile": "smoke", "seed": 0}, root=reports_dir)
    rep.headline("accuracy", 0.9, 0.1111)
    log = tmp_path / "x.log"
    log.write_text("Traceback\nValueError: boom\n")
    status.record_status("01_x", "failed", 3, "smoke", str(log), reports=reports_dir)
    body = index.build(reports_dir, results_dir).read_text().split("</p>", 1)[1]
    assert "stale: numbers from an earlier run" in body and "ValueError: boom" in body
    assert "0.8123" in body and "0.1111" not in body


def test_index_shows_partial_paper_beside_smoke_with_thumbnails_and_provenance(tmp_path):
    reports_dir, results_dir = tmp_path / "reports", tmp_path / "results"
    fake_run(reports_dir, "02_y", "paper", 0.7001, partial={"done": 3, "total": 12})
    status.record_status("02_y", "ok", 100, "paper", None, reports=reports_dir)
    fake_run(reports_dir, "02_y", "smoke", 0.5002, figures=("fig8_accuracy", "roc"))
    status.record_status("02_y", "ok", 10, "smoke", None, reports=reports_dir)
    page = index.build(reports_dir, results_dir).read_text()
    body = page.split("</p>", 1)[1]
    assert body.index("paper profile") < body.index("0.7001") < body.index("smoke profile") < body.index("0.5002")
    assert "partial: 3 of 12 run units done" in body
    assert "-0.1999" in body and "-0.3998" in body  # deltas
    srcs = re.findall(r'<img src="([^"]+)"', body)
    assert srcs == ["02_y/last-paper/figures/fig8_accuracy.png", "02_y/last-smoke/figures/fig8_accuracy.png",
                    "02_y/last-smoke/figures/roc.png"]
    assert all((reports_dir / s).is_file() for s in srcs)
    commit = reports.git_provenance()["commit"]
    assert commit is None or f"commit {commit[:10]}" in body
    assert "Intel" in body or "cores" in body


def test_publish_keeps_results_small_and_the_index_falls_back_to_them(tmp_path):
    reports_dir, results_dir = tmp_path / "reports", tmp_path / "results"
    fake_run(reports_dir, "01_two_stage_autoencoder", "paper", 0.91, figures=("fig1_big", "fig2_big"), size=(3000, 2000))
    status.record_status("01_two_stage_autoencoder", "ok", 100, "paper", None, reports=reports_dir)
    dst, what = publish.publish_one("01_two_stage_autoencoder", reports_dir, results_dir)
    assert dst == results_dir / "01_two_stage_autoencoder", what
    res = json.loads((dst / "results.json").read_text())
    assert res["profile"] == "paper" and res["complete"] and res["published"]["date"] and "git" in res
    assert (dst / "t1.csv").exists()
    for f in res["figures"]:
        with Image.open(dst / f) as im:
            assert im.width <= publish.FIGURE_MAX_WIDTH
    assert sum(f.stat().st_size for f in dst.rglob("*") if f.is_file()) <= publish.PUBLISH_BUDGET
    # a fresh checkout: no reports of its own, the index shows the published run
    fresh = tmp_path / "fresh_reports"
    page = index.build(fresh, results_dir).read_text()
    assert "published run from results/" in page and "0.91" in page
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) == 2 and all((fresh / s).resolve().is_file() for s in srcs)


def test_partial_or_missing_paper_runs_are_not_published(tmp_path):
    reports_dir, results_dir = tmp_path / "reports", tmp_path / "results"
    assert publish.publish_one("04_z", reports_dir, results_dir)[0] is None
    fake_run(reports_dir, "04_z", "paper", 0.5, partial={"done": 1, "total": 4})
    status.record_status("04_z", "ok", 1, "paper", None, reports=reports_dir)
    dst, what = publish.publish_one("04_z", reports_dir, results_dir)
    assert dst is None and "partial" in what and not (results_dir / "04_z").exists()
    fake_run(reports_dir, "04_z", "smoke", 0.5)
    status.record_status("04_z", "ok", 1, "smoke", None, reports=reports_dir)  # smoke is never published
    assert not (results_dir / "04_z").exists()
    # a run that stopped at its time budget finishes with what is done: shown, marked partial
    rep = Report("04_z", {"profile": "paper", "seed": 0}, root=reports_dir)
    rep.headline("accuracy", 0.9, 0.4321)
    rep.results["partial"] = {"done": 2, "total": 4}
    rep.finish()
    assert "warning" not in status.record_status("04_z", "ok", 1, "paper", None, reports=reports_dir)
    page = index.build(reports_dir, results_dir).read_text()
    assert "0.4321" in page and "partial: 2 of 4 run units done" in page


def test_readme_tables_come_from_results(tmp_path):
    reports_dir, results_dir = tmp_path / "reports", tmp_path / "results"
    fake_run(reports_dir, "02_fracture_cnn", "paper", 0.6543)
    status.record_status("02_fracture_cnn", "ok", 1, "paper", None, reports=reports_dir)
    publish.publish_one("02_fracture_cnn", reports_dir, results_dir)
    readme = tmp_path / "README.md"
    readme.write_text("# T\n<!-- results:01 -->\nold\n<!-- /results:01 -->\ntext\n<!-- results:02 -->\n"
                      "| stale | hand | copied |\n<!-- /results:02 -->\nend\n")
    assert publish.update_readme(readme, results_dir) == ["01_two_stage_autoencoder", "02_fracture_cnn"]
    text = readme.read_text()
    assert "hand" not in text and "old" not in text and text.startswith("# T\n") and text.endswith("end\n")
    assert "| accuracy (note) | 0.9 | 0.6543 | -0.2457 |" in text
    assert "No paper-profile run published yet" in text.split("<!-- /results:01 -->")[0]
    assert "results/02_fracture_cnn/results.json" in text and "Paper profile, run" in text
    once = text
    publish.update_readme(readme, results_dir)
    assert readme.read_text() == once  # idempotent


def test_render_writes_a_report_view_with_folded_code_and_a_full_view(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["papermill"] = {"parameters": {"profile": "smoke"}}
    code = nbformat.v4.new_code_cell("print('hello')  # SOURCE_MARKER")
    code.outputs = [nbformat.v4.new_output("stream", name="stderr", text=ABSL + "\n"),
                    nbformat.v4.new_output("stream", name="stdout", text=KEEP[0] + "\n")]
    book = nbformat.v4.new_code_cell("report.finish()", metadata={"tags": ["bookkeeping"]})
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), code, book]
    path = tmp_path / "executed" / "07_demo.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    view, full, dropped = render.render(path, tmp_path / "html")
    assert dropped == 1 and view.name == "07_demo.smoke.html" and full.name == "07_demo.smoke.full.html"
    v, f = view.read_text(), full.read_text()
    for page in (v, f):
        assert "NodeDef mentions" not in page and "NOT COMPARABLE" in page
    assert v.count('<details class="imgclf-code">') == 2 and "bookkeeping code" in v
    assert 'href="07_demo.smoke.full.html"' in v and "SOURCE_MARKER" in f and "imgclf-code" not in f
    assert "NodeDef" not in path.read_text()  # the executed notebook is cleaned too


def test_a_notebook_that_stopped_at_its_budget_renders_as_partial_not_as_an_exception(tmp_path):
    """papermill's red banners of a PartialRun stop (a budget spent, the report finished as partial)
    become a "partial run" note; a real exception keeps them."""
    def executed(ename, evalue):
        nb = nbformat.v4.new_notebook()
        nb.metadata["papermill"] = {"parameters": {"profile": "smoke"}}
        tag = {"tags": ["papermill-error-cell-tag"]}
        banner = nbformat.v4.new_markdown_cell("<span>An Exception was encountered at 'In [9]'.</span>", metadata=tag)
        here = nbformat.v4.new_markdown_cell('<span id="papermill-error-cell">Execution using papermill encountered '
                                             'an exception here and stopped:</span>', metadata=tag)
        stop = nbformat.v4.new_code_cell("report.stop_if_partial('...')", execution_count=9)
        stop.outputs = [nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])]
        nb.cells = [banner, nbformat.v4.new_markdown_cell("# Title"), here, stop]
        return nb

    why = "partial: 0 of 5 runs; the tables below need every fold: run the notebook again to go on"
    nb = executed("PartialRun", why)
    assert render.mark_partial_stop(nb)
    assert nb.cells[0].source.startswith("**Partial run.**") and "[In [9]](#papermill-error-cell)" in nb.cells[0].source
    assert why in nb.cells[0].source and 'id="papermill-error-cell"' in nb.cells[2].source
    assert [o["output_type"] for o in nb.cells[3].outputs] == ["stream"] and why in nb.cells[3].outputs[0]["text"]
    path = tmp_path / "executed" / "02_demo.ipynb"
    path.parent.mkdir()
    nbformat.write(executed("PartialRun", why), path)
    page = render.render(path, tmp_path / "html")[0].read_text()
    assert "Partial run." in page and "An Exception was encountered" not in page
    real = executed("ValueError", "bad value")
    assert not render.mark_partial_stop(real) and "An Exception was encountered" in real.cells[0].source


def test_the_index_says_how_long_reused_units_took_when_they_were_computed():
    units = [{"name": "a", "seconds": 5000.0, "reused": True}, {"name": "b", "seconds": 4000.0, "reused": True},
             {"name": "c", "seconds": 60.0, "reused": False}]
    assert index.run_time_text(30.0, {"units": units}) == (
        "0.5 min (2 of 3 run units reused; all 3 took 2.5 h when computed)")
    assert index.run_time_text(90.0, {"units": units[2:]}) == "1.5 min"  # nothing reused: the wall time says it
    assert index.run_time_text(None, {"units": units}) is None
    for hostile in ("x", {"units": "x"}, {"units": [1, None, {"seconds": "y", "reused": True}]}):
        assert index.run_time_text(60.0, hostile).startswith("1.0 min")


def test_index_reads_numbers_and_stored_summaries_and_never_parses_text():
    summary = {"mean": 0.9679, "sd": 0.0036, "n": 2, "ci95": [0.9356, 1.0002]}
    rows = index.headline_rows({"headline": [
        {"what": "acc", "paper": 0.9285, "ours": summary, "comparable": True, "better": "higher"},
        {"what": "one run", "paper": 0.9839, "ours": {"mean": 0.9703, "sd": None, "n": 1, "ci95": [None, None]}},
        {"what": "text", "paper": 0.9, "ours": "0.97 ± 0.01 (n=2)"},  # a number stored as text is not a number
        {"what": "other task", "paper": 0.7313, "ours": 0.71, "comparable": False},
        {"what": "loss", "paper": 0.5, "ours": 0.4, "better": "lower"},
        {"what": "size", "paper": 100, "ours": 150, "better": None},
    ]})
    by = {r["what"]: r for r in rows}
    assert by["acc"]["delta"] == "+0.0394" and by["acc"]["ours"] == "0.9679 ± 0.0036 (n=2)"
    assert by["one run"]["delta"] == "-0.0136" and by["one run"]["ours"] == "0.9703 (n=1)"
    assert by["text"]["delta"] == "\u2013" and by["text"]["style"] == ""
    assert by["other task"]["delta"] == "not comparable" and by["other task"]["style"] == ""
    blue, red, grey = "33,102,172", "178,24,43", "110,119,129"
    assert red in by["acc"]["style"] or blue in by["acc"]["style"]
    assert blue in by["acc"]["style"]  # higher accuracy: better
    assert blue in by["loss"]["style"]  # lower loss: better, although ours − paper < 0
    assert grey in by["size"]["style"] and blue not in by["size"]["style"] and red not in by["size"]["style"]
    assert index.headline_rows({"comparable": False, "headline": [{"what": "a", "paper": 1.0, "ours": 2.0}]})[0][
        "delta"] == "not comparable"  # a run flagged not comparable as a whole: no delta anywhere


def test_report_headline_and_claims_reach_the_index(tmp_path):
    from imgclf.stats import paired, summarize

    reports_dir = tmp_path / "reports"
    rep = Report("03_c", {"profile": "smoke", "seed": 0}, root=reports_dir)
    rep.headline("test accuracy", 0.97, summarize([0.96, 0.97, 0.98]))
    rep.headline("time per epoch (s)", 10, 12.5, better="lower")
    rep.claim(paired([0.97, 0.96, 0.98], [0.95, 0.955, 0.97], ("DNN", "DBN")), "DNN vs DBN")
    rep.finish()
    res = json.loads((reports_dir / "03_c" / "results.json").read_text())
    assert res["headline"][0]["ours"] == {"mean": pytest.approx(0.97), "sd": pytest.approx(0.01), "n": 3, "ci95": pytest.approx([0.9452, 0.9948], abs=1e-4)}
    status.record_status("03_c", "ok", 1, "smoke", None, reports=reports_dir)
    page = index.build(reports_dir, tmp_path / "results").read_text()
    assert "0.9700 ± 0.0100 (n=3)" in page and "+0.0000" not in page
    assert "DNN vs DBN: DNN − DBN = +0.0117, 95 % CI [-0.0073, +0.0306] (n = 3)" in page
    assert '<span class="verdict tie">tie</span>' in page
    row = re.search(r"time per epoch \(s\).*?</tr>", page, re.S).group(0)
    assert "178,24,43" in row and "+2.5" in row  # slower than the paper: worse, red
    with pytest.raises(ValueError):
        rep.headline("x", 1, 2, better="up")


def test_whole_numbers_print_as_integers_and_wide_frames_fit_the_page():
    assert display.number(218448.0) == "218,448" and display.number(5.0) == "5" and display.number(0.96812) == "0.9681"
    assert display.number(float("nan")) == "\u2013" and display.signed(3.0) == "+3"
    narrow = pd.DataFrame({"a": [1.0, 2.5]})
    assert display.frame_html(narrow) == narrow.to_html()
    params = pd.DataFrame([{f"parameter_{i}": 0.001 * i for i in range(54)}])  # 1 row × 54 columns
    html = display.frame_html(params)
    assert "transposed" in html and html.count("<table") == 1 and html.count("<tr>") >= 54
    wide = pd.DataFrame(np.arange(30 * 60, dtype=float).reshape(60, 30), columns=[f"column {i}" for i in range(30)])
    parts = display.frame_html(wide)
    assert parts.count("<table") > 1 and "columns 1–" in parts
    assert all(f"column {i}</th>" in parts for i in range(30))  # every column shown, none cut
    with pd.option_context("display.max_columns", 20):
        display.display_options()
        assert pd.get_option("display.max_columns") is None and pd.get_option("display.max_colwidth") is None
        assert "218,448" in pd.DataFrame({"x": [218448.0, 1.5]}).to_string()


def _summary_outputs(name="ae", total="218,448"):
    """The five display outputs Keras 3 writes for ``model.summary()`` in a notebook."""
    texts = [f'\x1b[1mModel: "{name}"\x1b[0m\n', "┏━━━━━┳━━━━━┓\n┃ Layer (type) ┃ Param # ┃\n┡━━━━━╇━━━━━┩\n└─────┴─────┘\n",
             f"\x1b[1m Total params: \x1b[0m\x1b[38;5;34m{total}\x1b[0m (853.31 KB)\n",
             f"\x1b[1m Trainable params: \x1b[0m{total}\n", "\x1b[1m Non-trainable params: \x1b[0m0 (0.00 B)\n"]
    return [nbformat.v4.new_output("display_data", data={"text/plain": t, "text/html": f"<pre>{t}</pre>"}) for t in texts]


def test_report_pages_one_per_profile_with_the_run_bar_and_model_summaries_folded(tmp_path):
    reports_dir = tmp_path / "reports"
    for profile, acc in (("paper", 0.97), ("smoke", 0.51)):
        rep = Report("07_demo", {"profile": profile, "seed": 0}, root=reports_dir)
        rep.headline("accuracy", 0.98, acc)
        if profile == "smoke":
            rep.not_comparable("smoke run: 500 images")
        rep.finish()
        nb = nbformat.v4.new_notebook()
        nb.metadata["papermill"] = {"parameters": {"profile": profile}}
        cell = nbformat.v4.new_code_cell("model.summary()")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="before\n"), *_summary_outputs(),
                        nbformat.v4.new_output("stream", name="stdout", text="after\n")]
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {profile} MARKER"), cell]
        path = reports_dir / "executed" / f"07_demo.{profile}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        view, full, _ = render.render(path, reports_dir / "html", reports_dir / "07_demo")
        assert view.name == f"07_demo.{profile}.html" and full.name == f"07_demo.{profile}.full.html"
    paper, smoke = ((reports_dir / "html" / f"07_demo.{p}.html").read_text() for p in ("paper", "smoke"))
    assert "paper MARKER" in paper and "smoke MARKER" in smoke  # the smoke run did not overwrite the paper page
    from bs4 import BeautifulSoup

    bar = BeautifulSoup(smoke, "html.parser").find(class_="imgclf-run").get_text(" ", strip=True)
    assert "profile smoke" in bar and "UTC" in bar and ("commit" in bar) and "cores" in bar and "Keras" in bar
    assert "NOT COMPARABLE with the paper: smoke run: 500 images" in bar
    assert "profile paper" in BeautifulSoup(paper, "html.parser").find(class_="imgclf-run").get_text(" ", strip=True)
    soup = BeautifulSoup(smoke, "html.parser")
    folded = soup.select("details.imgclf-summary")
    assert len(folded) == 1 and "Keras model summary: ae, 218,448 parameters" in folded[0].summary.get_text()
    assert "Non-trainable params" in folded[0].get_text() and "Layer (type)" in folded[0].get_text()
    text = soup.get_text()
    assert text.index("before") < text.index("Keras model summary") < text.index("after")
    full = (reports_dir / "html" / "07_demo.smoke.full.html").read_text()
    assert "imgclf-summary" not in full and "Non-trainable params" in full  # the full view keeps it as it was


def test_published_run_carries_its_report_page_within_the_size_budget(tmp_path, monkeypatch):
    reports_dir, results_dir = tmp_path / "reports", tmp_path / "results"
    rep = fake_run(reports_dir, "01_two_stage_autoencoder", "paper", 0.91, figures=("fig1_big",), size=(3000, 2000))
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"parameters": {"profile": "paper"}}
    cell = nbformat.v4.new_code_cell("report.figure(fig, 'fig1_big')")
    big = (reports_dir / "01_two_stage_autoencoder" / "figures" / "fig1_big.png").read_bytes()
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(big).decode(),
                                                                 "text/plain": "<figure>"},
                                           metadata={"imgclf": {"figure": "figures/fig1_big.png"}})]
    nb.cells = [nbformat.v4.new_markdown_cell("# PUBLISHED MARKER"), cell]
    executed = reports_dir / "executed" / "01_two_stage_autoencoder.paper.ipynb"
    executed.parent.mkdir(parents=True)
    nbformat.write(nb, executed)
    status.record_status("01_two_stage_autoencoder", "ok", 100, "paper", None, reports=reports_dir)
    dst, what = publish.publish_one("01_two_stage_autoencoder", reports_dir, results_dir)
    page = (dst / "report.html").read_text()
    assert "PUBLISHED MARKER" in page and "profile" in page and "all reports" not in page  # no link out of results/
    small = (dst / "figures" / "fig1_big.png").read_bytes()
    assert base64.b64encode(small).decode() in page and base64.b64encode(big).decode() not in page
    assert json.loads((dst / "results.json").read_text())["published"]["report"] == "report.html"
    assert sum(f.stat().st_size for f in dst.rglob("*") if f.is_file()) <= publish.PUBLISH_BUDGET
    # a fresh checkout: the index links the published report through its copy inside reports/
    fresh = tmp_path / "fresh"
    idx = index.build(fresh, results_dir).read_text()
    links = re.findall(r'(?:href|src)="([^"]+)"', idx)
    assert "01_two_stage_autoencoder/published/report.html" in links
    assert links and all(not link.startswith("..") and (fresh / link).is_file() for link in links)
    # a page that does not fit the budget is left out, and the run says so
    monkeypatch.setattr(publish, "PUBLISH_BUDGET", _size_without_page(dst) + 1000)
    dst, what = publish.publish_one("01_two_stage_autoencoder", reports_dir, results_dir)
    assert not (dst / "report.html").exists() and "left out" in what
    assert "left out" in json.loads((dst / "results.json").read_text())["published"]["report"]
    del rep


def _size_without_page(folder):
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and f.name != "report.html")


def _browser():
    from imgclf import browser

    if browser.find_chromium() is None:
        import os

        if os.environ.get("IMGCLF_REQUIRE_BROWSER") == "1":
            pytest.fail("IMGCLF_REQUIRE_BROWSER=1 but no Chromium on PATH")
        pytest.skip("no Chromium on PATH (apt-get install chromium)")
    return browser


def test_index_fits_a_laptop_and_a_phone_and_the_check_sees_a_page_that_does_not(tmp_path):
    browser = _browser()
    reports_dir = tmp_path / "reports"
    long = "MURA: kappa 0.705 of the MURA paper's radiologists on another data set, reference ilias-ant/fracture"
    rep = Report("02_fracture_cnn", {"profile": "smoke", "seed": 0}, root=reports_dir, title="A long title " * 8)
    rep.headline(long, 0.7313, 123456789.0, long, better=None)
    rep.headline("test accuracy, group-weighted, majority baseline beside it", 0.7313, 0.71)
    rep.note("x" * 400)
    rep.finish()
    status.record_status("02_fracture_cnn", "ok", 5, "smoke", None, reports=reports_dir)
    page = index.build(reports_dir, tmp_path / "results")
    facts = browser.check_index(page)
    assert facts["problems"] == [], facts["problems"]
    # the same page with one line that cannot wrap, and a table in a box too small for it
    bad = page.with_name("bad.html")
    bad.write_text(page.read_text().replace("</body>", "<p style='white-space:nowrap'>" + "word " * 120 + "</p>"
                                            "<div style='overflow-x:auto;width:200px'><table><tr>"
                                            + "<td style='white-space:nowrap'>cell cell cell cell</td>" * 5
                                            + "</tr></table></div></body>"))
    problems = browser.width_problems(bad, (browser.LAPTOP, browser.PHONE))
    assert any("scrolls sideways at 1366 px" in p for p in problems)
    assert any("scrolls sideways at 375 px" in p for p in problems)
    assert any("clipped tables at 375 px" in p for p in problems)


def test_a_cpu_sized_profile_is_published_in_the_papers_place_under_its_own_name(tmp_path):
    reports_dir, results_dir = tmp_path / "reports", tmp_path / "results"
    fake_run(reports_dir, "04_knn_slicing_evolution", "cpu4000", 0.9312)
    status.record_status("04_knn_slicing_evolution", "ok", 100, "cpu4000", None, reports=reports_dir)
    with pytest.raises(SystemExit, match="not published"):
        publish.publish(["04"], reports_dir, results_dir, "smoke")
    assert publish.publish(["04"], reports_dir, results_dir, "cpu4000") == 0
    res = json.loads((results_dir / "04_knn_slicing_evolution" / "results.json").read_text())
    assert res["profile"] == "cpu4000" and res["published"]["from"].endswith("last-cpu4000")
    page = index.build(tmp_path / "fresh", results_dir).read_text().split("</p>", 1)[1]
    assert "cpu4000 profile" in page and "0.9312" in page and "published run from results/" in page
    block = publish.readme_block("04_knn_slicing_evolution", results_dir)  # the README says so too
    assert block.startswith("Profile `cpu4000` (sized for a CPU, not the paper's scale), run") and "0.9312" in block
