"""Every parameter rule: checked where the value enters, before any work, naming the parameter.

Through :func:`imgclf.config.resolve` (profiles and ranges), through
:func:`imgclf.papers.check_parameters` (a notebook's whole namespace: profile first, unknown names,
files, data_dir, budget) and, for an unknown name and a bad profile, through papermill itself.
"""

import math
import re
from pathlib import Path

import papermill as pm
import pytest
from imgclf import config, papers
from imgclf.config import ParameterError
from imgclf.papers import p01_two_stage_autoencoder as p01
from imgclf.papers import p04_knn_slicing_evolution as p04
from imgclf.papers import p05_linnaeus_transfer as p05

NB04 = Path(__file__).resolve().parents[1] / "notebooks" / "04_knn_slicing_evolution.ipynb"


def _raises_naming(name):
    return pytest.raises(ParameterError, match=f"'{re.escape(name)}'")


@pytest.mark.parametrize(
    "notebook, override, name",
    [
        # fractions and probabilities in [0, 1]
        ("01_two_stage_autoencoder", dict(noise_levels=[0.1, 1.5]), "noise_levels[1]"),
        ("01_two_stage_autoencoder", dict(dae_noise=2.0), "dae_noise"),
        ("02_fracture_cnn", dict(dropout=1.0), "dropout"),
        ("02_fracture_cnn", dict(folds=1), "folds"),
        ("02_fracture_cnn", dict(val_size=1.0), "val_size"),
        ("02_fracture_cnn", dict(dup_threshold=1.2), "dup_threshold"),
        ("04_knn_slicing_evolution", dict(fitness_val_fraction=1.0), "fitness_val_fraction"),
        ("05_linnaeus_transfer", dict(resnet_dropout=1.5), "resnet_dropout"),
        ("03_mnist_deep_cnns", dict(momentum=1.0), "momentum"),
        # learning rates finite and > 0
        ("01_two_stage_autoencoder", dict(ae_learning_rate=math.nan), "ae_learning_rate"),
        ("01_two_stage_autoencoder", dict(clf_learning_rate=math.inf), "clf_learning_rate"),
        ("02_fracture_cnn", dict(learning_rate=0.0), "learning_rate"),
        ("03_mnist_deep_cnns", dict(learning_rates=[0.01, 0.0]), "learning_rates[1]"),
        ("05_linnaeus_transfer", dict(learning_rates=[1e-3, math.nan]), "learning_rates[1]"),
        ("05_linnaeus_transfer", dict(resnet_lrs=[-1e-3]), "resnet_lrs[0]"),
        ("04_knn_slicing_evolution", dict(sigma_random=0.0), "sigma_random"),
        # list lengths and shapes, choices, minimum sizes
        ("04_knn_slicing_evolution", dict(table2_settings=[[4000, 1000, 5], [4000, 1000]]), "table2_settings[1]"),
        ("01_two_stage_autoencoder", dict(dnn_grid=[[300, 100, 50]]), "dnn_grid[0]"),
        ("03_mnist_deep_cnns", dict(models=["vgg19"]), "models[0]"),
        ("03_mnist_deep_cnns", dict(jit_compile="yes"), "jit_compile"),
        ("03_mnist_deep_cnns", dict(image_size=28), "image_size"),
        ("05_linnaeus_transfer", dict(folds=1), "folds"),
        ("02_fracture_cnn", dict(filters=[16, 0]), "filters[1]"),
    ],
)
def test_range_rules_name_the_parameter(notebook, override, name):
    with _raises_naming(name):
        config.resolve(notebook, "smoke", 0, **override)


@pytest.mark.parametrize("notebook", config.NOTEBOOKS)
def test_every_profile_of_every_paper_passes_its_own_rules(notebook):
    for profile in config.paper_module(notebook).config.PROFILES:  # smoke, paper and any a paper adds
        assert config.resolve(notebook, profile, 0).profile == profile


def _namespace(paper, **values):
    """What a notebook's namespace holds after its parameters cell (and papermill's injection)."""
    ns = {name: None for name in papers.declared_parameters(paper)}
    ns.update(profile="smoke", seed=0, In=[], Out={}, get_ipython=lambda: None, np=math, _oh={})
    ns.update(values)
    return ns


def test_profile_is_checked_first(tmp_path):
    ns = _namespace(p04, profile="huge", learning_rate=-1.0, typo_here=1, data_dir=str(tmp_path / "nope"))
    with _raises_naming("profile"):
        papers.check_parameters(p04, ns)


def test_an_undeclared_name_stops_the_notebook(tmp_path):
    with pytest.raises(ParameterError, match="generation"):
        papers.check_parameters(p04, _namespace(p04, generation=5, data_dir=str(tmp_path)))


def test_a_clean_namespace_passes_and_resolves(tmp_path):
    cfg = papers.check_parameters(p05, _namespace(p05, data_dir=str(tmp_path), folds=3, budget_minutes=2,
                                                  reuse_runs="any-code"))
    assert cfg.folds == 3 and (cfg.dataset, cfg.linnaeus_resolution, cfg.mobilenet_weights) == \
        ("flowers", None, "imagenet")
    assert (cfg.budget_minutes, cfg.reuse_runs, cfg.data_dir) == (2, "any-code", str(tmp_path.resolve()))


def test_missing_data_dir_is_refused_before_any_folder_is_made(tmp_path):
    ns = _namespace(p04, data_dir=str(tmp_path / "no-such-dir"), reports_root=str(tmp_path / "reports"))
    with _raises_naming("data_dir"):
        papers.start(p04, ns)
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    "paper, values, name",
    [
        (p05, dict(dataset="linnaeus6"), "dataset"),
        (p05, dict(linnaeus_resolution=100), "linnaeus_resolution"),
        (p05, dict(mobilenet_weights="~/weights/mobilenet_typo.h5"), "mobilenet_weights"),
        (p01, dict(spectra_file="wheat_spectra_typo.npz"), "spectra_file"),
        (p04, dict(seed=-1), "seed"),
        (p04, dict(budget_minutes=0), "budget_minutes"),
        (p04, dict(budget_minutes=float("nan")), "budget_minutes"),
        (p04, dict(reuse_runs="no"), "reuse_runs"),
    ],
)
def test_extra_parameters_are_checked(paper, values, name, tmp_path):
    with _raises_naming(name):
        papers.check_parameters(paper, _namespace(paper, data_dir=str(tmp_path), **values))


def test_an_existing_weights_file_is_accepted(tmp_path):
    w = tmp_path / "mobilenet.weights.h5"
    w.write_bytes(b"x")
    cfg = papers.check_parameters(p05, _namespace(p05, data_dir=str(tmp_path), mobilenet_weights=str(w)))
    assert Path(cfg.mobilenet_weights).resolve() == w.resolve()


@pytest.mark.notebook
@pytest.mark.parametrize("params, name", [(dict(profile="huge"), "profile"), (dict(generation=5), "generation")])
def test_papermill_stops_on_a_bad_profile_or_an_unknown_name(params, name, tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match=name) as err:
        pm.execute_notebook(str(NB04), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                            parameters=dict(reports_root=str(tmp_path), **params))
    assert err.value.ename == "ParameterError"
    assert not (tmp_path / "04_knn_slicing_evolution").exists()


@pytest.mark.parametrize("notebook", sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0*.ipynb")),
                         ids=lambda p: p.stem)
def test_every_notebook_links_its_paper_from_the_repository(notebook):
    """A reader of the repository alone can find the paper: a URL or docs/papers.md (which says
    where each paper is, DOI or URL), never a file outside the repository."""
    import json

    first = "".join(json.loads(notebook.read_text())["cells"][0]["source"])
    assert "shared/papers" not in first
    assert re.search(r"\(\.\./docs/papers\.md\)|<https?://", first), first[:300]
    assert (notebook.parents[1] / "docs" / "papers.md").is_file()
