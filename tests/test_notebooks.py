"""Notebooks under papermill with tiny parameters (real MNIST and faces needed)."""

import json
import os
from pathlib import Path

import papermill as pm
import pytest
from conftest import TINY04

REPO = Path(__file__).resolve().parents[1]
NB01 = REPO / "notebooks" / "01_two_stage_autoencoder.ipynb"

TINY01 = dict(
    mnist_seeds=2, faces_splits=2, variant_seeds=1, ablation_seeds=1, converge_epochs=3, dbn_lr_grid=[1e-2], rbm_epochs_grid=[1],
    sensitivity_levels=[0.3], faces_ae_patience=8, dnn_grid=[[64, 32]], dbn_grid=[[64, 32]], faces_grid_epochs=8,
    mnist_train=600, mnist_test=200, ae_epochs=2, faces_ae_epochs=16, clf_epochs=8, grid_epochs=1, rbm_epochs=1,
    fig1_train=300, fig1_epochs=2, bottleneck_sizes=[16], sweep_train=300, sweep_epochs=1, noise_levels=[0.0, 0.3],
    spectra_classes=5, spectra_samples=100, spectra_length=320, cae_epochs=1, cnn_epochs=2, dnn_spectra_epochs=2,
    class_counts=[3], class_sweep_epochs=1,
)


@pytest.mark.notebook
@pytest.mark.realdata
def test_notebook01_runs_and_writes_results_and_figures(real_data, tmp_path):
    pm.execute_notebook(str(NB01), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                        parameters=dict(profile="smoke", data_dir=str(real_data), reports_root=str(tmp_path), **TINY01))
    out = tmp_path / "01_two_stage_autoencoder"
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["profile"] == "smoke" and res["params"]["mnist_train"] == 600
    for fig in ("fig1_ae_loss_vs_time", "fig2_noisy_examples", "table2_accuracy_vs_noise", "fig5_accuracy_vs_classes"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000
    t1 = {(r["data set"], r["model"]): r for r in res["comparisons"]["table1_paper_vs_ours"]}
    assert len(t1) == 6 and all(r["ours n"] == 2 for r in t1.values())  # two seeds / splits per cell
    # above chance by a margin (chance: MNIST 0.1, faces 0.025); a broken pipeline (shuffled labels,
    # codes not matching their images, a classifier that does not train) stays near chance
    assert t1[("MNIST", "DNN")]["ours"] > 0.5 and t1[("MNIST", "Perceptron")]["ours"] > 0.4
    assert t1[("faces", "DNN")]["ours"] > 0.25
    runs = (out / "all_runs_long.csv").read_text()
    assert "PCA-64 + logistic regression" in runs and "median filter 3x3 + AE + DNN" in runs and "salt-and-pepper" in runs
    import pandas as pd

    long = pd.read_csv(out / "all_runs_long.csv")
    pca = long[(long["model"] == "PCA-64 + logistic regression") & (long["data set"] == "faces")]["accuracy"]
    assert len(pca) == 2 and pca.min() > 0.6
    assert any("SYNTHETIC" in n for n in res["notes"])
    assert any(n.startswith("Does the denoising AE help on noisy images?") for n in res["notes"])
    assert (out / "table2_paper_vs_ours.csv").exists() and (out / "perceptron_readings.csv").exists()


@pytest.mark.notebook
def test_bad_parameter_stops_notebook_naming_it(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="ae_epochs"):
        pm.execute_notebook(str(NB01), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                            parameters=dict(profile="smoke", ae_epochs=-3, reports_root=str(tmp_path)))


NB04 = REPO / "notebooks" / "04_knn_slicing_evolution.ipynb"
NB05 = REPO / "notebooks" / "05_linnaeus_transfer.ipynb"
TINY05 = dict(n_train=100, n_test=100, scratch_mobilenet_size=32, scratch_resnet_size=32, folds=2, epochs=3,
              learning_rates=[1e-2, 1e-3], resnet_epochs=1, resnet_heads=["64", "linear"], step_time_batch=2,
              step_time_steps=1, pretrain_images=1200, pretrain_epochs=4)


NB02 = REPO / "notebooks" / "02_fracture_cnn.ipynb"
TINY02 = dict(input_size=16, epochs=3, filters=[8, 16], dense=16, dup_max_angle=45, dup_angle_step=15,
              gradcam_images=2, misclassified_images=4, folds=2, resnet_epochs=2, check_candidates=3)


NB03 = REPO / "notebooks" / "03_mnist_deep_cnns.ipynb"
# enough steps for the batch-normalised networks to leave chance (ResNet-18: 2 x 20 steps of SGD at 0.01)
TINY03 = dict(mnist_train=640, mnist_test=200, image_size=32, epochs=2, vgg16_epochs=1, models=["vgg16", "googlenet", "resnet18"],
              optimizers=["sgd", "adam"], learning_rates=[0.001], count_params_at_224=False)


@pytest.mark.notebook
@pytest.mark.realdata
@pytest.mark.portable  # CI runs it under JAX too: paper 4's fitness is keras.ops, its training train.fit
@pytest.mark.xdist_group("run04")
def test_notebook04_runs_and_writes_tables_figures_and_sizes(run04):
    out = run04 / "04_knn_slicing_evolution"  # ./run_all.sh 04 with TINY04 (conftest.run04)
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["params"]["popsize"] == 4
    # run_all.sh ran it on the test session's backend (CI: TensorFlow, then JAX)
    assert res["hardware"]["backend"]["name"] == os.environ.get("KERAS_BACKEND", "tensorflow")
    assert res["comparable"] is False and "smoke" in res["not_comparable_reason"]  # a smoke run says so
    for fig in ("fitness_random_start", "fitness_finetune"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000
    t2 = {(r["model"], r["setting"]): r for r in res["comparisons"]["table2_paper_vs_ours"]}
    models = {m for m, _ in t2}
    evolved = {f"k-NN {m} ({s}, per-layer search)" for m in ("CMA-ES", "PSO") for s in ("random start", "fine-tuned from backprop")}
    assert {"CNN 16", "CNN 8", "control: k-NN on raw pixels"} | evolved <= models and len(t2) == 3 * len(models)
    assert all(r["ours"] is None or 0 <= r["ours"] <= 100 for r in t2.values())
    for (m, col), r in t2.items():  # controls beside every evolved row
        if m in evolved:
            assert r["control: random kernels"] is not None and r["control: raw pixels"] is not None
    # columns say the setting as run, and which of the paper's columns it stands for
    row = t2[("k-NN CMA-ES (random start, per-layer search)", "200/100, 1 epochs")]
    assert row["paper_setting"] == "4000/1000, 5 epochs" and row["paper"] == 97.5
    # evolution moved the kernels (evolved rows that are the random-kernel control fail here); with one
    # generation an elitist run may keep its start when no candidate beat it, so each optimiser must
    # have moved in some of its runs, not in every one
    moved = {k: v["kernel_change"] for k, v in res["metrics"].items() if "random start" in k}
    assert len(moved) == 3 * 2 * 2  # 3 columns x CMA-ES/PSO x 2 seeds
    for method in ("CMA-ES", "PSO"):
        assert any(max(c) > 0 for k, c in moved.items() if k.lower().startswith(method.lower()[:3])), (method, moved)
    # the claim: evolved minus random kernels, paired over the 2 seeds, as numbers
    claims = {c["what"]: c for c in res["claims"]}
    assert len(claims) == 2 and all(c["diff_n"] == 2 and c["verdict"] in ("beats", "below", "tie") for c in claims.values())
    # the settings table names the fitness's images as the default soft-loo fitness uses them (all scored)
    assert "fitness images (leave-one-out: each scored against the others)" in (out / "settings_as_run.csv").read_text()
    sizes = (out / "inference_engine_sizes.csv").read_text()
    assert "kernels only (raw float32 bytes),18816,75264" in sizes and "reference features" in sizes
    head = {h["what"]: h for h in res["headline"]}
    assert head["sliced engine, kernels only (KB)"]["ours"] == 73.5 and head["sliced engine, kernels only (KB)"]["paper"] == 74
    hist = (out / "evolution_history.csv").read_text().splitlines()
    assert len(hist) > 1 + 4 * 2  # header + CMA/PSO x random start/fine-tune, two layers each
    assert res["runs"]["total"] >= 2 * 3 + 2 * 3 and not res["runs"]["partial"]


def beats_the_majority_class(res: dict) -> None:
    """Notebook 05's frozen-base path (a weights file: our own pretrained base) is above the majority
    class by a margin. A run that learned nothing but the class shares (features that carry nothing,
    a head that does not train, labels out of step with their images) sits at margin 0 and fails here."""
    m = res["metrics"]
    assert m["mobilenet own base"]["held-back accuracy"] > m["mobilenet own base"]["held-back majority"] + 0.1
    assert m["MobileNet test margin over majority"] > 0.1
    claims = {c["what"]: c for c in res["claims"]}
    assert claims["MobileNet (CV's lr) vs the majority class, CV validation accuracy"]["diff_mean"] > 0.1


def verdicts_follow_their_intervals(res: dict) -> None:
    """Every claim a notebook printed says "beats"/"below" only when its 95 % interval excludes 0."""
    assert res.get("claims"), "no claim recorded"
    for c in res["claims"]:
        lo, hi = c["diff_ci95"]
        decided = lo is not None and hi is not None and c["diff_n"] >= 2 and (lo > 0 or hi < 0)
        assert (c["verdict"] != "tie") == decided, c


@pytest.mark.notebook
@pytest.mark.realdata
def test_notebook05_runs_flags_missing_imagenet_weights_and_beats_the_majority_class(real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no cached weights in a fresh home
    pm.execute_notebook(str(NB05), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                        parameters=dict(profile="smoke", data_dir=str(real_data), reports_root=str(tmp_path),
                                        mobilenet_weights="imagenet",  # not cached, and offline: our own base
                                        resnet_weights="random", **TINY05))
    out = tmp_path / "05_linnaeus_transfer"
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["comparable"] is False
    assert "no ImageNet weights" in res["not_comparable_reason"] and "pretrained by us" in res["not_comparable_reason"]
    counts = {r["level_0"] + "/" + r["level_1"]: r for r in res["comparisons"]["tables2_5_param_counts"]}
    assert counts["ResNet50/trainable params"]["ours"] == 4_207_621
    for fig in ("fig9_mobilenet_confusion_test", "fig10_mobilenet_roc", "fig17_resnet50_confusion_test",
                "mobilenet_own_base_pretraining"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000
    t14 = {r["model"] + "/" + r["level_1"]: r["ours"] for r in res["comparisons"]["table14_paper_vs_ours"]}
    assert all(0 <= v <= 1 for k, v in t14.items() if k.endswith("/test accuracy"))
    m = res["metrics"]
    assert t14["majority class/test accuracy"] == m["majority class test accuracy"] == 0.24  # dandelions: 24 of 100
    assert "majority class" in {r["lr"] for r in res["comparisons"]["table8_mobilenet_paper_vs_ours"]}
    verdicts_follow_their_intervals(res)
    beats_the_majority_class(res)
    assert any("cannot train" in n or "too small" in n for n in res["notes"])  # ResNet50 from scratch, labelled


@pytest.mark.notebook
@pytest.mark.realdata
@pytest.mark.parametrize("nb, tiny", [(NB01, TINY01), (NB03, TINY03), (NB04, TINY04), (NB05, TINY05)],
                         ids=["01", "03", "04", "05"])
def test_a_spent_budget_still_runs_the_notebook_to_its_end_as_partial(real_data, tmp_path, nb, tiny):
    """A budget spent before the first unit starts (the extreme of a slice that ends early): every
    table, figure and claim cell copes with units left for the next run, and the report says
    partial. (Notebook 02 needs all its folds and stops itself instead: in its own test.)"""
    pm.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                        parameters=dict(profile="smoke", data_dir=str(real_data), reports_root=str(tmp_path),
                                        budget_minutes=1e-6, **tiny))
    res = json.loads((tmp_path / nb.stem / "results.json").read_text())
    assert res["complete"] and res["partial"]["done"] == 0 and res["partial"]["total"] >= 3, res.get("partial")
    assert any("run the notebook again to go on" in n for n in res["notes"])


@pytest.mark.notebook
@pytest.mark.realdata
def test_notebook02_runs_and_reports_both_evaluations(real_data, tmp_path):
    if not (real_data / "fracture").is_dir():
        pytest.skip("fracture data not staged")
    pm.execute_notebook(str(NB02), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                        parameters=dict(profile="smoke", data_dir=str(real_data), reports_root=str(tmp_path), **TINY02))
    out = tmp_path / "02_fracture_cnn"
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["params"]["input_size"] == 16 and res["params"]["epochs"] == 3
    for fig in ("fig8_accuracy", "fig9_loss", "confusion_A", "confusion_B", "roc", "misclassified", "fig11_gradcam"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000
    m = res["metrics"]
    assert m["A: test images with a byte-identical copy in train"] == 339
    assert 339 <= m["A: test images with a near or exact copy in train"] <= 506
    # above chance by a margin: on the leaky own split the copies make it easy even at 16 px and 3 epochs;
    # shuffled labels or a model that does not train would sit at AUC 0.5
    assert m["A: AUC"] > 0.6  # shuffled labels: 0.5 +- 0.03 on these 506 test images
    assert 0.5 <= m["B plain mean majority accuracy"] <= 0.75
    import pandas as pd

    assert m["B: duplicate groups, each tested exactly once"] > 100
    summary = pd.read_csv(out / "cv_summary.csv", index_col=0)
    assert list(summary.index) == ["plain", "resnet", "no CNN"] and (summary["accuracy n"] == 2).all()  # both folds
    assert {"accuracy (groups)", "majority accuracy (groups)", "kappa (groups)"} <= set(summary.columns)
    rows = {r["metric"]: r for r in res["comparisons"]["paper_vs_ours"]}
    acc = rows["test accuracy, plain CNN (grouped folds)"]
    assert acc["paper"] == 0.7313 and acc["ours"] == pytest.approx(m["B plain mean accuracy"]) and acc["ours n"] == 2
    assert acc["ours - paper"] is None  # other data, probably another task: no difference shown
    assert rows["Cohen's kappa, plain CNN"]["paper"] is None and rows["ROC AUC, plain CNN"]["paper"] is None
    ref = [r for k, r in rows.items() if "ilias-ant" in k]
    assert [r["other work"] for r in ref] == [0.386] and ref[0]["paper"] is None
    heads = {h["what"]: h for h in res["headline"]}
    assert heads["test accuracy, grouped folds (plain CNN)"]["comparable"] is False
    claim = next(c for c in res["claims"] if c["what"] == "accuracy, grouped folds: plain − no CNN")
    assert claim["diff_n"] == 2 and claim["verdict"] in ("beats", "below", "tie")
    log = (out / "fig7_epoch_log_group_split.csv").read_text().splitlines()
    assert log[0].startswith("epoch,seconds,loss,acc,val_loss,val_acc") and 2 <= len(log) <= 4
    assert (out / "cv_independent_duplicate_check.csv").exists()
    assert any("inflated" in n for n in res["notes"])
    # A budget spent before any unit (reuse off, so the units above are not reused): every cell
    # after the units needs all folds, so the notebook finishes its report as partial and stops
    # itself with PartialRun (run_all.sh reports that as partial, not as a failure)
    with pytest.raises(pm.PapermillExecutionError, match="PartialRun") as stop:
        pm.execute_notebook(str(NB02), str(tmp_path / "spent.ipynb"), kernel_name="python3", progress_bar=False,
                            parameters=dict(profile="smoke", data_dir=str(real_data), reports_root=str(tmp_path),
                                            budget_minutes=1e-6, reuse_runs=False, **TINY02))
    assert "partial: 0 of 5 runs" in str(stop.value)
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["partial"] == {"done": 0, "total": 5}
    assert any(n.startswith("stopped before the end") for n in res["notes"])


@pytest.mark.notebook
@pytest.mark.realdata
def test_notebook03_runs_and_writes_table1_figures_and_closing_note(real_data, tmp_path):
    out_nb = tmp_path / "out.ipynb"
    pm.execute_notebook(str(NB03), str(out_nb), kernel_name="python3", progress_bar=False,
                        parameters=dict(profile="smoke", data_dir=str(real_data), reports_root=str(tmp_path), **TINY03))
    out = tmp_path / "03_mnist_deep_cnns"
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["profile"] == "smoke" and res["params"]["epochs"] == 2
    assert res["comparable"] is False  # tiny runs are flagged, not passed off as the paper's
    for fig in ("fig5_vgg16_sgd", "fig6_googlenet_sgd", "fig7_resnet18_sgd", "confusion_best", "table1_paper_vs_ours"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000
    t1 = res["comparisons"]["table1_paper_vs_ours"]
    # per model the paper's vanilla and "with SGD" rows at 0.001 (both our SGD run) and its "with Adam" row
    assert len(t1) == 12 and sum(r["ours"] is not None for r in t1) == 9
    runs = [v for k, v in res["metrics"].items() if " lr=" in k]
    assert {r["arch"]: len(r["history"]["val_accuracy"]) for r in runs} == {"vgg16": 1, "googlenet": 2, "resnet18": 2}
    # VGG-16 (3-5x slower per image on a CPU) runs last, so a budget slice finishes the cheap networks first
    assert [r["arch"] for r in runs] == ["googlenet", "googlenet", "resnet18", "resnet18", "vgg16", "vgg16"]
    table = (out / "table1_runs.csv").read_text().splitlines()  # the tables keep the paper's order
    assert [line.split(",")[0] for line in table[1:]] == ["VGG-16"] * 2 + ["GoogLeNet"] * 2 + ["ResNet-18"] * 2
    assert all(r["status"] in ("at chance", "learning", "converged", "diverged (NaN loss)") for r in runs)
    # the best run learned: above chance (0.1 on the stratified test set) by a margin, and labelled so;
    # a pipeline that cannot learn (labels detached from images, no step taken) stays at chance
    best = max(runs, key=lambda r: r["accuracy"])
    assert best["accuracy"] > 0.1 + 0.2 and best["status"] in ("learning", "converged")
    t1 = {(r["model"], r["paper row"], r["learning rate"]): r for r in res["comparisons"]["table1_paper_vs_ours"]}
    assert t1[("ResNet-18", "ResNet-18", 0.001)]["status"] in ("at chance", "learning", "converged")  # Table I shows the label
    assert t1[("ResNet-18", "ResNet-18", 0.01)]["ours"] is None  # not run: shown empty
    for name in ("table1_runs", "classification_reports", "parameters", "wall_time_per_model"):
        assert (out / f"{name}.csv").exists()
    closing = json.dumps(json.loads(out_nb.read_text())["cells"][-1]["outputs"])
    assert "Table I as measured" in closing and "Wall times" in closing
    # the paper's conclusion, paired: SGD against Adam in each model's cell, a claim over the cells
    # where both learned (if any did at this size), the verdicts counted, the forest plot
    pairs = (out / "paired_optimizer.csv").read_text().splitlines()
    assert len(pairs) == 1 + 3 and (out / "figures" / "paired_conclusions.png").stat().st_size > 1000
    both = [line.split(",")[-1] == "True" for line in pairs[1:]]
    claims = [c for c in res["claims"] if c["what"].startswith("SGD − Adam over the")]
    assert len(claims) == any(both) and all(c["diff_n"] == sum(both) for c in claims)
    assert "SGD − Adam, cell by cell: beats in" in json.dumps(json.loads(out_nb.read_text())["cells"], ensure_ascii=False)
    # the control without a CNN: k-NN on raw pixels learns MNIST too (about 80 % on 640 images), and
    # the paper's best configuration is compared with it over the same test images
    knn = res["metrics"]["control: k-NN on raw pixels"]
    assert knn["k"] == 3 and knn["accuracy"] > 0.6
    vs = (out / "runs_vs_raw_pixel_knn.csv").read_text().splitlines()
    assert len(vs) == 1 + len(runs) and (out / "figures" / "runs_vs_control.png").is_file()
    claim = next(c for c in res["claims"] if c["what"].startswith("the paper's best configuration − the control"))
    chosen = next(r for r in runs if r["arch"] == "resnet18" and r["optimizer"] == "sgd")
    assert claim["diff_n"] == 200 and claim["verdict"] in ("beats", "below", "tie")
    assert claim["diff_mean"] == pytest.approx(100 * (chosen["accuracy"] - knn["accuracy"]))


@pytest.mark.notebook
def test_notebook03_refuses_an_unknown_model_naming_the_parameter(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="models"):
        pm.execute_notebook(str(NB03), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                            parameters=dict(profile="smoke", models=["vgg19"], reports_root=str(tmp_path)))
