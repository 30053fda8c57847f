"""Notebooks under papermill with tiny parameters (real MNIST and faces needed)."""

import json
from pathlib import Path

import papermill as pm
import pytest

REPO = Path(__file__).resolve().parents[1]
NB01 = REPO / "notebooks" / "01_two_stage_autoencoder.ipynb"

TINY01 = dict(
    mnist_train=600, mnist_test=200, ae_epochs=2, faces_ae_epochs=5, clf_epochs=2, grid_epochs=1, rbm_epochs=1,
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
    t1 = res["comparisons"]["table1_paper_vs_ours"]
    assert len(t1) == 6 and all(0 <= row["ours"] <= 1 for row in t1)
    assert any("SYNTHETIC" in n for n in res["notes"])
    assert (out / "table2_paper_vs_ours.csv").exists()


@pytest.mark.notebook
def test_bad_parameter_stops_notebook_naming_it(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="ae_epochs"):
        pm.execute_notebook(str(NB01), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                            parameters=dict(profile="smoke", ae_epochs=-3, reports_root=str(tmp_path)))


NB03 = REPO / "notebooks" / "03_mnist_deep_cnns.ipynb"
TINY03 = dict(mnist_train=64, mnist_test=32, image_size=32, epochs=2, models=["vgg16", "googlenet", "resnet18"],
              optimizers=["sgd"], learning_rates=[0.01], count_params_at_224=False)


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
    assert len(t1) == 12 and sum(r["ours"] is not None for r in t1) == 3  # the three SGD lr=0.01 rows ran
    runs = [v for k, v in res["metrics"].items() if " lr=" in k]
    assert len(runs) == 3 and all(len(r["history"]["val_accuracy"]) == 2 for r in runs)
    assert all(r["status"] in ("ok", "at chance", "diverged (NaN loss)") for r in runs)
    for name in ("table1_runs", "classification_reports", "parameters", "wall_time_per_model"):
        assert (out / f"{name}.csv").exists()
    closing = json.dumps(json.loads(out_nb.read_text())["cells"][-1]["outputs"])
    assert "Table I as measured" in closing and "Wall times" in closing


@pytest.mark.notebook
def test_notebook03_refuses_an_unknown_model_naming_the_parameter(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="models"):
        pm.execute_notebook(str(NB03), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                            parameters=dict(profile="smoke", models=["vgg19"], reports_root=str(tmp_path)))
