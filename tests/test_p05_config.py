"""Paper 5's config: the paper's settings as defaults, the smoke diff, and the parameters a notebook
namespace may set (the paper-5 rows of tests/test_parameters.py, on the typed config)."""

import dataclasses
import math
from pathlib import Path

import pytest
from imgclf import config, papers
from imgclf.config import ParameterError
from imgclf.papers import p05_linnaeus_transfer as p05


def _namespace(**values):
    ns = {name: None for name in papers.declared_parameters(p05)}
    ns.update(profile="smoke", seed=0, In=[], Out={}, get_ipython=lambda: None, np=math, _oh={})
    ns.update(values)
    return ns


@pytest.mark.parametrize("profile", ["paper", "smoke"])
def test_both_profiles_pass_their_own_rules(profile):
    assert config.resolve("05_linnaeus_transfer", profile, 0).profile == profile


def test_the_defaults_are_the_papers_and_smoke_is_a_short_diff():
    cfg = p05.config.Config()
    assert (cfg.mobilenet_size, cfg.resnet_size, cfg.folds, cfg.epochs, cfg.resnet_epochs) == (224, 256, 5, 20, 20)
    assert cfg.learning_rates == (1e-2, 1e-3, 1e-4, 1e-5, 1e-6) and cfg.resnet_lrs == (1e-3, 1e-4, 1e-5, 1e-6)
    assert cfg.resnet_heads[0] == "1024-1024" and cfg.resnet_dropout == 0.05
    smoke = p05.config.PROFILES["smoke"]
    assert all(getattr(cfg, k) != v for k, v in smoke.items())  # a diff lists only what differs
    assert p05.config.PROFILES["paper"] == {}


def test_a_clean_namespace_passes_and_resolves(tmp_path):
    cfg = papers.check_parameters(p05, _namespace(data_dir=str(tmp_path), folds=3))
    assert cfg.folds == 3 and (cfg.dataset, cfg.linnaeus_resolution, cfg.mobilenet_weights, cfg.resnet_weights,
                               cfg.budget_minutes, cfg.reuse_runs) == ("flowers", None, "imagenet", "random",
                                                                       None, True)  # smoke: no ResNet50 base
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.folds = 4


def test_an_existing_weights_file_is_accepted(tmp_path):
    w = tmp_path / "mobilenet.weights.h5"
    w.write_bytes(b"x")
    cfg = papers.check_parameters(p05, _namespace(data_dir=str(tmp_path), mobilenet_weights=str(w)))
    assert Path(cfg.mobilenet_weights).resolve() == w.resolve()


@pytest.mark.parametrize("values, name", [
    (dict(dataset="linnaeus6"), "dataset"),
    (dict(linnaeus_resolution=100), "linnaeus_resolution"),
    (dict(mobilenet_weights="~/weights/mobilenet_typo.h5"), "mobilenet_weights"),
    (dict(resnet_weights=None, mobilenet_weights=3), "mobilenet_weights"),
    (dict(folds=1), "folds"),
])
def test_bad_values_name_the_parameter(values, name, tmp_path):
    with pytest.raises(ParameterError, match=f"'{name}'"):
        papers.check_parameters(p05, _namespace(data_dir=str(tmp_path), **values))
