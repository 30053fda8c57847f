"""A notebook run the way ``./run_all.sh`` runs it (the script itself: papermill with the imgclf
kernel, render, status, index), read back as a reader gets it: the executed notebook, the HTML,
and the pages as headless Chromium builds them.

Notebook 04 with tiny parameters (MNIST needed): the session fixture ``run04`` of conftest.py.
The browser test needs Chromium; it is skipped without one unless ``IMGCLF_REQUIRE_BROWSER=1``
(set by ``.ci/run``, which installs it), so CI never skips it silently.
"""

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from imgclf import browser, render

REPO = Path(__file__).resolve().parents[1]
NAME = "04_knn_slicing_evolution"


@pytest.mark.notebook
@pytest.mark.realdata
@pytest.mark.xdist_group("run04")  # one run of notebook 04 for all of them (conftest.run04)
def test_every_saved_figure_is_one_image_output_of_the_executed_notebook(run04):
    res = json.loads((run04 / NAME / "results.json").read_text())
    assert res["complete"] and len(res["figures"]) == 2
    nb = json.loads((run04 / "executed" / f"{NAME}.smoke.ipynb").read_text())
    images = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    shown = [o.get("metadata", {}).get("imgclf", {}).get("figure") for o in images]
    assert None not in shown, f"{shown.count(None)} image outputs not from report.figure (a backend showing a figure again?)"
    assert sorted(shown) == sorted(res["figures"])  # each saved figure shown exactly once, nothing else
    for o, rel in zip(images, shown):
        assert base64.b64decode(o["data"]["image/png"]) == (run04 / NAME / rel).read_bytes()
    assert set(res["captions"]) == set(res["figures"])
    assert res["git"]["commit"] is None or len(res["git"]["commit"]) == 40


@pytest.mark.notebook
@pytest.mark.realdata
@pytest.mark.xdist_group("run04")  # one run of notebook 04 for all of them (conftest.run04)
def test_html_has_no_log_lines_and_the_log_keeps_them(run04):
    log = (run04 / "logs" / f"{NAME}.smoke.log").read_text()
    progress = [l for l in log.splitlines() if " gen " in l and "elapsed" in l]
    assert progress and all(render.is_noise(l) for l in progress)  # per-generation lines: in the log only
    for page in (run04 / "html" / f"{NAME}.smoke.html", run04 / "html" / f"{NAME}.smoke.full.html"):
        text = browser.visible_text(page.read_text())
        assert browser.log_lines(text) == [], page
        assert "ceiling [" in text  # the notebook's own print stays
    view = (run04 / "html" / f"{NAME}.smoke.html").read_text()
    assert view.count('<details class="imgclf-code">') >= 10 and "bookkeeping code" in view
    assert "Table 2 of the paper vs ours" in view and "rgba(178,24,43" in view  # coloured deltas
    status = json.loads((run04 / "status" / f"{NAME}-smoke.json").read_text())
    assert status["status"] == "ok" and (run04 / NAME / "last-smoke" / "results.json").exists()


@pytest.mark.notebook
@pytest.mark.realdata
@pytest.mark.xdist_group("run04")  # one run of notebook 04 for all of them (conftest.run04)
def test_pages_in_headless_chromium_show_every_figure_no_logs_and_links_resolve(run04):
    if browser.find_chromium() is None:
        if os.environ.get("IMGCLF_REQUIRE_BROWSER") == "1":
            pytest.fail("IMGCLF_REQUIRE_BROWSER=1 but no Chromium on PATH (apt-get install chromium)")
        pytest.skip("no Chromium on PATH (apt-get install chromium); .ci/run installs it")
    res = json.loads((run04 / NAME / "results.json").read_text())
    for page in (f"{NAME}.smoke.html", f"{NAME}.smoke.full.html"):
        facts = browser.check_report(run04 / "html" / page, NAME, "smoke", run04)
        assert facts["images"] == len(res["figures"]) == facts["figure_outputs"] == facts["expected"], facts
        assert facts["log_lines"] == [] and facts["problems"] == [], facts
    idx = browser.check_index(run04 / "index.html")
    assert idx["broken"] == [] and idx["problems"] == []
    assert f"html/{NAME}.smoke.html" in idx["links"] and f"{NAME}/last-smoke/figures/fitness_finetune.png" in idx["links"]
    thumbs = [link for link in idx["links"] if link.startswith(f"{NAME}/last-smoke/figures/")]
    assert len(set(thumbs)) == len(res["figures"])  # thumbnails (published runs of other notebooks may add theirs)
    shot = browser.screenshot(run04 / "index.html", run04 / "screenshots" / "index.png", height=900)
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 10_000
    rc = subprocess.run([str(REPO / "run_all.sh"), "check"], cwd=REPO, capture_output=True, text=True, timeout=600,
                        env={**os.environ, "IMGCLF_REPORTS": str(run04),
                             "PYTHONPATH": str(REPO / "lib") + os.pathsep + os.environ.get("PYTHONPATH", "")})
    assert rc.returncode == 0, rc.stdout + rc.stderr
    assert {p.name for p in (run04 / "screenshots").glob("*.png")} >= {f"{NAME}.smoke.png", f"{NAME}.smoke.full.png", "index.png"}
