"""The report a reader sees: noise filtering, captions, coloured deltas, figure display, provenance,
the index (stale, partial, paper beside smoke, results/ fallback), publishing and README tables."""

import json
import re
import subprocess

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgclf import index, render, reports
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
    monkeypatch.setattr(reports, "_in_kernel", lambda: True)
    monkeypatch.setattr(reports, "_display", lambda bundle, metadata=None: shown.append((bundle, metadata)))
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
    index.record_status("01_x", "ok", 10, "smoke", None, reports=reports_dir)
    page = index.build(reports_dir, results_dir).read_text()
    assert "0.8123" in page and "stale" not in page.split("</p>", 1)[1]
    # the next run fails half-way: its partial results.json must not replace the numbers shown
    rep = Report("01_x", {"profile": "smoke", "seed": 0}, root=reports_dir)
    rep.headline("accuracy", 0.9, 0.1111)
    log = tmp_path / "x.log"
    log.write_text("Traceback\nValueError: boom\n")
    index.record_status("01_x", "failed", 3, "smoke", str(log), reports=reports_dir)
    body = index.build(reports_dir, results_dir).read_text().split("</p>", 1)[1]
    assert "stale: numbers from an earlier run" in body and "ValueError: boom" in body
    assert "0.8123" in body and "0.1111" not in body


def test_index_shows_partial_paper_beside_smoke_with_thumbnails_and_provenance(tmp_path):
    reports_dir, results_dir = tmp_path / "reports", tmp_path / "results"
    fake_run(reports_dir, "02_y", "paper", 0.7001, partial={"done": 3, "total": 12})
    index.record_status("02_y", "ok", 100, "paper", None, reports=reports_dir)
    fake_run(reports_dir, "02_y", "smoke", 0.5002, figures=("fig8_accuracy", "roc"))
    index.record_status("02_y", "ok", 10, "smoke", None, reports=reports_dir)
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
    index.record_status("01_two_stage_autoencoder", "ok", 100, "paper", None, reports=reports_dir)
    dst, what = index.publish_one("01_two_stage_autoencoder", reports_dir, results_dir)
    assert dst == results_dir / "01_two_stage_autoencoder", what
    res = json.loads((dst / "results.json").read_text())
    assert res["profile"] == "paper" and res["complete"] and res["published"]["date"] and "git" in res
    assert (dst / "t1.csv").exists()
    for f in res["figures"]:
        with Image.open(dst / f) as im:
            assert im.width <= index.FIGURE_MAX_WIDTH
    assert sum(f.stat().st_size for f in dst.rglob("*") if f.is_file()) <= index.PUBLISH_BUDGET
    # a fresh checkout: no reports of its own, the index shows the published run
    fresh = tmp_path / "fresh_reports"
    page = index.build(fresh, results_dir).read_text()
    assert "published run from results/" in page and "0.91" in page
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) == 2 and all((fresh / s).resolve().is_file() for s in srcs)


def test_partial_or_missing_paper_runs_are_not_published(tmp_path):
    reports_dir, results_dir = tmp_path / "reports", tmp_path / "results"
    assert index.publish_one("04_z", reports_dir, results_dir)[0] is None
    fake_run(reports_dir, "04_z", "paper", 0.5, partial={"done": 1, "total": 4})
    index.record_status("04_z", "ok", 1, "paper", None, reports=reports_dir)
    dst, what = index.publish_one("04_z", reports_dir, results_dir)
    assert dst is None and "partial" in what and not (results_dir / "04_z").exists()
    fake_run(reports_dir, "04_z", "smoke", 0.5)
    index.record_status("04_z", "ok", 1, "smoke", None, reports=reports_dir)  # smoke is never published
    assert not (results_dir / "04_z").exists()
    # a run that stopped at its time budget finishes with what is done: shown, marked partial
    rep = Report("04_z", {"profile": "paper", "seed": 0}, root=reports_dir)
    rep.headline("accuracy", 0.9, 0.4321)
    rep.results["partial"] = {"done": 2, "total": 4}
    rep.finish()
    assert "warning" not in index.record_status("04_z", "ok", 1, "paper", None, reports=reports_dir)
    page = index.build(reports_dir, results_dir).read_text()
    assert "0.4321" in page and "partial: 2 of 4 run units done" in page


def test_readme_tables_come_from_results(tmp_path):
    reports_dir, results_dir = tmp_path / "reports", tmp_path / "results"
    fake_run(reports_dir, "02_fracture_cnn", "paper", 0.6543)
    index.record_status("02_fracture_cnn", "ok", 1, "paper", None, reports=reports_dir)
    index.publish_one("02_fracture_cnn", reports_dir, results_dir)
    readme = tmp_path / "README.md"
    readme.write_text("# T\n<!-- results:01 -->\nold\n<!-- /results:01 -->\ntext\n<!-- results:02 -->\n"
                      "| stale | hand | copied |\n<!-- /results:02 -->\nend\n")
    assert index.update_readme(readme, results_dir) == ["01_two_stage_autoencoder", "02_fracture_cnn"]
    text = readme.read_text()
    assert "hand" not in text and "old" not in text and text.startswith("# T\n") and text.endswith("end\n")
    assert "| accuracy (note) | 0.9 | 0.6543 | -0.2457 |" in text
    assert "No paper-profile run published yet" in text.split("<!-- /results:01 -->")[0]
    assert "results/02_fracture_cnn/results.json" in text
    once = text
    index.update_readme(readme, results_dir)
    assert readme.read_text() == once  # idempotent


def test_render_writes_a_report_view_with_folded_code_and_a_full_view(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    code = nbformat.v4.new_code_cell("print('hello')  # SOURCE_MARKER")
    code.outputs = [nbformat.v4.new_output("stream", name="stderr", text=ABSL + "\n"),
                    nbformat.v4.new_output("stream", name="stdout", text=KEEP[0] + "\n")]
    book = nbformat.v4.new_code_cell("report.finish()", metadata={"tags": ["bookkeeping"]})
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), code, book]
    path = tmp_path / "executed" / "07_demo.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    view, full, dropped = render.render(path, tmp_path / "html")
    assert dropped == 1 and view.name == "07_demo.html" and full.name == "07_demo.full.html"
    v, f = view.read_text(), full.read_text()
    for page in (v, f):
        assert "NodeDef mentions" not in page and "NOT COMPARABLE" in page
    assert v.count('<details class="imgclf-code">') == 2 and "bookkeeping code" in v
    assert 'href="07_demo.full.html"' in v and "SOURCE_MARKER" in f and "imgclf-code" not in f
    assert "NodeDef" not in path.read_text()  # the executed notebook is cleaned too


def test_index_deltas_use_the_mean_of_a_mean_sd_cell():
    assert index._fmt_delta(0.9285, "0.9679 ± 0.0036 (n=2)")[0] == "+0.0394"
    assert index._fmt_delta(0.9839, "0.9703 (n=1)")[0] == "-0.0136"
    assert index._fmt_delta("MURA: 0.386", "0.45 ± 0.1 (n=3)")[0] == "–"  # no number on the paper side
