"""Paper 5's cross-validation itself: the folds, the reset of the model between folds, the staged
learning rates actually applied, the best-epoch selection, and CV folds / final fits as run units."""

import keras
import numpy as np
import pandas as pd
import pytest
from imgclf.papers.p05_linnaeus_transfer import pipeline as p05
from imgclf.runs import Runs


def _data(n=60, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n // classes)
    x = rng.normal(size=(n, d)).astype("float32") + y[:, None].astype("float32")
    return x, y


def _head(d=6, classes=3, seed=0, dropout=0.2):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((d,))
    h = keras.layers.Dropout(dropout)(keras.layers.Dense(8, activation="relu")(inp))
    return keras.Model(inp, keras.layers.Dense(classes, activation="softmax")(h))


class _Probe(keras.callbacks.Callback):
    """Records the weights and the optimizer's step count when each fit begins, and the learning
    rate in force in each epoch."""

    def __init__(self):
        super().__init__()
        self.start_weights, self.start_steps, self.lrs = [], [], []

    def on_train_begin(self, logs=None):
        self.start_weights.append([np.array(w) for w in self.model.get_weights()])
        self.start_steps.append(int(self.model.optimizer.iterations.numpy()))
        self.lrs.append([])

    def on_epoch_end(self, epoch, logs=None):
        self.lrs[-1].append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


# -- folds -------------------------------------------------------------------------------------
def test_folds_are_stratified_disjoint_and_cover_every_sample():
    y = np.array([0] * 25 + [1] * 15 + [2] * 10)
    folds = p05.fold_indices(y, 5, seed=3)
    assert len(folds) == 5
    vals = [va for _, va in folds]
    assert sorted(np.concatenate(vals).tolist()) == list(range(len(y)))  # covering, each sample once
    for tr, va in folds:
        assert not set(tr) & set(va) and len(tr) + len(va) == len(y)
        assert np.bincount(y[va], minlength=3).tolist() == [5, 3, 2]  # the class shares of every fold
    assert [va.tolist() for va in vals] != [va.tolist() for _, va in p05.fold_indices(y, 5, seed=4)]


def test_cross_validate_trains_on_exactly_the_folds(monkeypatch):
    x, y = _data()
    seen = []

    def fake_fit(model, x_tr, y_tr, **kw):
        seen.append((len(x_tr), len(kw["validation_data"][0])))
        return {"accuracy": [0.5], "val_accuracy": [0.5], "loss": [1.0], "val_loss": [1.0], "epoch_time": [0.1],
                "train_seconds": [0.05]}

    monkeypatch.setattr(p05, "_fit", fake_fit)
    table, _ = p05.cross_validate(p05.reusable(_head()), x, y, folds=4, epochs=1, lr=1e-3, sparse=True)
    assert seen == [(45, 15)] * 4 and list(table.index) == ["1", "2", "3", "4", "AVG"]


# -- the reset between folds ------------------------------------------------------------------------
def test_every_fold_and_learning_rate_starts_from_the_same_fresh_model():
    x, y = _data()
    model = _head()
    init = [np.array(w) for w in model.get_weights()]
    make = p05.reusable(model)
    probe = _Probe()
    for lr in (1e-2, 1e-3):
        p05.cross_validate(make, x, y, folds=3, epochs=2, lr=lr, sparse=True, callbacks=[probe])
    assert len(probe.start_weights) == 6 and probe.start_steps == [0] * 6  # Adam's state zeroed too
    for ws in probe.start_weights:
        for a, b in zip(ws, init):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(model.get_weights()[0], init[0])  # it did train


def test_a_reused_model_gives_the_cv_of_a_fresh_one():
    x, y = _data()
    kw = dict(folds=3, epochs=3, sparse=True, seed=1)
    make = p05.reusable(_head(seed=5))
    p05.cross_validate(make, x, y, lr=3e-2, **kw)  # a first learning rate on the shared model
    reused, _ = p05.cross_validate(make, x, y, lr=1e-2, **kw)
    fresh, _ = p05.cross_validate(p05.reusable(_head(seed=5)), x, y, lr=1e-2, **kw)
    cols = ["train accuracy", "val accuracy", "train loss", "val loss", "best epoch"]
    np.testing.assert_array_equal(reused[cols].to_numpy(), fresh[cols].to_numpy())


# -- staged learning rates --------------------------------------------------------------------------
@pytest.mark.parametrize("epochs, expected", [
    (8, [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5, 1e-6, 1e-6]),
    (10, [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5, 1e-6, 1e-6, 1e-6, 1e-6]),  # the remainder stays at the last
])
def test_the_staged_learning_rates_are_the_ones_applied_in_each_epoch(epochs, expected):
    x, y = _data()
    probe = _Probe()
    p05.cross_validate(p05.reusable(_head()), x, y, folds=2, epochs=epochs, lr=9.0, sparse=True,
                       lr_stages=[1e-3, 1e-4, 1e-5, 1e-6], callbacks=[probe])
    assert len(probe.lrs) == 2
    for lrs in probe.lrs:
        np.testing.assert_allclose(lrs, expected, rtol=1e-6)


# -- best-epoch selection -----------------------------------------------------------------------
def test_the_best_epoch_is_the_first_with_the_highest_validation_accuracy():
    h = {"accuracy": [0.5, 0.6, 0.7, 0.8], "val_accuracy": [0.4, 0.7, 0.7, 0.6], "loss": [4.0, 3.0, 2.0, 1.0],
         "val_loss": [5.0, 2.5, 2.0, 3.0], "epoch_time": [1.0, 1.0, 3.0, 1.0], "train_seconds": [0.5, 0.5, 0.5, 0.5]}
    row = p05.best_epoch_row(h, batch_size=10, n_train=100)
    assert row["best epoch"] == 2
    assert (row["train accuracy"], row["val accuracy"], row["train loss"], row["val loss"]) == (0.6, 0.7, 3.0, 2.5)
    assert row["seconds"] == 6.0
    assert row["step ms"] == pytest.approx(50.0) and row["epoch step ms"] == pytest.approx(100.0)


def test_cross_validate_reports_each_folds_best_epoch(monkeypatch):
    x, y = _data()
    curves = iter([[0.2, 0.9, 0.5], [0.8, 0.3, 0.3], [0.1, 0.2, 0.6]])

    def fake_fit(model, x_tr, y_tr, **kw):
        va = next(curves)
        return {"accuracy": [0.1, 0.2, 0.3], "val_accuracy": va, "loss": [3.0, 2.0, 1.0], "val_loss": [1.0, 1.0, 1.0],
                "epoch_time": [0.1] * 3, "train_seconds": [0.05] * 3}

    monkeypatch.setattr(p05, "_fit", fake_fit)
    table, _ = p05.cross_validate(p05.reusable(_head()), x, y, folds=3, epochs=3, lr=1e-3, sparse=True)
    assert table.loc[["1", "2", "3"], "best epoch"].tolist() == [2, 1, 3]
    assert table.loc[["1", "2", "3"], "val accuracy"].tolist() == [0.9, 0.8, 0.6]
    assert table.loc["AVG", "val accuracy"] == pytest.approx((0.9 + 0.8 + 0.6) / 3)


# -- run units -----------------------------------------------------------------------------------------
def _cfg(**kw):
    from imgclf import config
    from imgclf.papers.p05_linnaeus_transfer import config as p05_config

    return config.make(p05_config, "smoke", 2, **{"folds": 3, "epochs": 2, "batch_size": 32, **kw})


@pytest.fixture
def small_head(monkeypatch):
    """Every candidate's initial model is the small head of these tests (the units are the notebook's)."""
    monkeypatch.setattr(p05, "initial_model", lambda cfg, arch, weights, head: p05.reusable(_head(classes=5)))


def test_cv_folds_are_run_units_reused_and_budgeted(tmp_path, small_head):
    x, y = _data(classes=5)
    cfg = _cfg()
    kw = dict(cfg=cfg, arch="mobilenet", weights="random", head=None, lr=1e-2, x=x, y=y)
    first = Runs(tmp_path, log=lambda m: None, budget_minutes=1)
    first.budget_spent = lambda: len(first.ran) >= 2  # spent once two folds have finished
    partial, _ = p05.cross_validate_units(first, **kw)
    assert list(partial.index) == ["1", "2", "AVG"] and not partial.attrs["complete"]
    assert first.skipped == ["MobileNet lr=0.01 fold 3/3"]
    second = Runs(tmp_path, log=lambda m: None)
    full, _ = p05.cross_validate_units(second, **kw)
    assert len(second.reused) == 2 and len(second.ran) == 1 and full.attrs["complete"]
    in_one_go, _ = p05.cross_validate_units(Runs(tmp_path / "other", log=lambda m: None), **kw)
    cols = ["train accuracy", "val accuracy", "train loss", "val loss", "best epoch"]
    np.testing.assert_array_equal(full[cols].to_numpy(), in_one_go[cols].to_numpy())


def test_a_changed_setting_is_a_new_unit(tmp_path, small_head):
    x, y = _data(classes=5)
    r = Runs(tmp_path, log=lambda m: None)
    kw = dict(arch="mobilenet", weights="random", head=None, lr=1e-2, x=x, y=y)
    p05.cross_validate_units(r, cfg=_cfg(), **kw)
    p05.cross_validate_units(r, cfg=_cfg(step_time_steps=1), **kw)  # not a key: the same units
    assert len(r.ran) == 3 and len(r.reused) == 3
    p05.cross_validate_units(r, cfg=_cfg(epochs=3), **kw)
    assert len(r.ran) == 6


def test_a_final_fit_unit_stores_its_weights_and_a_reuse_evaluates_the_same(tmp_path, small_head):
    x, y = _data(classes=5)
    cfg = _cfg()
    kw = dict(arch="mobilenet", weights="random", head=None, lr=1e-2, x=x, y=y, x_test=x[:30], y_test=y[:30],
              names=list("abcde"))
    a = p05.final(Runs(tmp_path, log=lambda m: None), cfg, **kw)
    again = Runs(tmp_path, log=lambda m: None)
    b = p05.final(again, cfg, **kw)
    assert again.reused == ["MobileNet lr=0.01 final"]
    np.testing.assert_array_equal(a["test"]["proba"], b["test"]["proba"])
    assert a["test"]["loss"] == b["test"]["loss"] and a["history"]["loss"] == b["history"]["loss"]


# -- the majority-class baseline and the paired verdict -------------------------------------------
def test_majority_accuracy_is_the_share_of_the_training_majority_class():
    assert p05.majority_accuracy([0, 1, 1, 2], [1, 1, 0, 2]) == 0.5
    assert p05.majority_accuracy([2, 0, 0, 2], [0, 2, 2, 2]) == 0.25  # a tie: the lowest label
    y_test = np.array([0] * 37 + [1] * 30 + [2] * 30 + [3] * 28 + [4] * 25)
    assert p05.majority_accuracy(np.repeat(np.arange(5), [60, 40, 50, 50, 50]), y_test) == 37 / 150


def test_majority_folds_and_the_paired_verdict_over_the_same_folds():
    from imgclf import config
    from imgclf.papers.p05_linnaeus_transfer import config as p05_config

    cfg = config.make(p05_config, "smoke", 0, folds=3)
    y = np.array([0] * 30 + [1] * 15 + [2] * 15)
    maj = p05.majority_folds(cfg, y)
    assert list(maj.index) == ["1", "2", "3"] and np.allclose(maj["val accuracy"], 0.5)
    folds = pd.DataFrame({"val accuracy": [0.8, 0.82, 0.79, 0.8]}, index=["1", "2", "3", "AVG"])
    d = p05.versus_majority(folds, maj, "model")
    assert d.diff.n == 3 and d.diff.mean == pytest.approx(0.3033, abs=1e-4) and d.verdict() == "beats"
    at_majority = pd.DataFrame({"val accuracy": [0.52, 0.47, 0.51]}, index=["1", "2", "3"])
    assert p05.versus_majority(at_majority, maj, "model").verdict() == "tie"
    assert p05.versus_majority(folds.drop(index="3"), maj, "model") is None  # a missing fold: no verdict
    float32 = pd.DataFrame({"val accuracy": np.float32([0.5, 0.5, 0.5]).astype(float)}, index=["1", "2", "3"])
    assert p05.versus_majority(float32 - 5e-9, maj, "model").verdict() == "tie"  # exactly at the majority class
    t = p05.margin_table({"model": (folds, {"test": {"accuracy": 0.7}})}, maj, 0.25)
    assert t.loc["model", "verdict"] == "beats" and t.loc["model", "test margin"] == pytest.approx(0.45)


def test_with_majority_adds_one_row_of_cv_means_and_test_accuracy():
    maj = pd.DataFrame({"train accuracy": [0.4, 0.6], "val accuracy": [0.3, 0.5]}, index=["1", "2"])
    t = pd.DataFrame({"val accuracy": [0.9], "test accuracy": [0.8], "test loss": [0.3]}, index=[1e-3])
    out = p05.with_majority(t, maj, 0.25)
    assert out.loc[p05.MAJORITY, "val accuracy"] == pytest.approx(0.4)
    assert out.loc[p05.MAJORITY, "test accuracy"] == 0.25 and np.isnan(out.loc[p05.MAJORITY, "test loss"])


def test_scratch_learning_rates_that_cannot_train_are_labelled():
    from imgclf import config
    from imgclf.papers.p05_linnaeus_transfer import config as p05_config

    cfg = config.make(p05_config, "smoke", 0)
    assert "1e-05, 1e-06" in p05.scratch_lr_note(cfg, "mobilenet", "random")
    assert "too small" in p05.scratch_lr_note(cfg, "resnet50", "random")
    assert p05.scratch_lr_note(cfg, "resnet50", "/some/base.weights.h5") is None


# -- our own base: held-out images only, a weights file used as a user's is ---------------------------
def test_held_out_images_are_outside_the_subset_and_stratified(real_data):
    from imgclf import config
    from imgclf.papers.p05_linnaeus_transfer import config as p05_config

    cfg = config.make(p05_config, "smoke", 0, data_dir=str(real_data), pretrain_images=500)
    train_set, test_set, train_all = p05.load_data(cfg)
    pool = p05.held_out(cfg, train_all, train_set)
    used = set(map(str, train_set.paths)) | set(map(str, test_set.paths))
    assert len(pool) == 500 and not used & set(map(str, pool.paths))
    assert set(map(str, pool.paths)) <= set(map(str, train_all.paths))  # training split only
    share = lambda labels: np.bincount(labels, minlength=5) / len(labels)  # noqa: E731
    np.testing.assert_allclose(share(pool.labels), share(train_all.labels), atol=0.01)  # stratified
    with pytest.raises(config.ParameterError, match="pretrain_base"):
        p05.held_out(config.make(p05_config, "smoke", 0, data_dir=str(real_data), n_train=10**6), train_all,
                     p05.load_data(config.make(p05_config, "smoke", 0, data_dir=str(real_data), n_train=10**6))[0])


def test_a_pretrained_base_is_a_weights_file_that_loads_like_a_users(tmp_path):
    from imgclf import config
    from imgclf.models import transfer
    from imgclf.papers.p05_linnaeus_transfer import config as p05_config

    cfg = config.make(p05_config, "smoke", 0, pretrain_epochs=1, batch_size=16)
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(5), 16)
    x = (rng.uniform(0, 60, (80, 32, 32, 3)) + 40 * y[:, None, None, None]).astype(np.uint8)
    r = Runs(tmp_path, log=lambda m: None)
    rec = r.cached(p05.pretrain_base, cfg=cfg, arch="mobilenet", x=x, y=y)
    assert rec["images"] + rec["held back"] == 80 and len(rec["history"]["val_accuracy"]) == 1
    # brightness tells these classes apart: after one epoch the recalibrated base scores well above the
    # majority class on its held-back images (measured 0.625 vs 0.125), while the history's last
    # val_accuracy, on batch-norm averages that lag the training, sits at one class's share (0.125)
    assert rec["held-back accuracy"] > rec["held-back majority"] + 0.25
    assert rec["held-back accuracy before BN recalibration"] == rec["history"]["val_accuracy"][-1]
    path = r.find(p05.pretrain_base, cfg=cfg, arch="mobilenet", x=x, y=y).path("mobilenet_base.weights.h5")
    w, why = transfer.resolve_weights("mobilenet", str(path))
    assert w == str(path) and "local weights file" in why
    tm = transfer.build_mobilenet(32, weights=w)  # the frozen-base path, from the file
    bns = [l for l in p05._application_of(tm).layers if isinstance(l, keras.layers.BatchNormalization)]
    assert all(np.abs(np.asarray(l.moving_mean)).sum() > 0 for l in bns)  # statistics learned, not a fresh base
    assert tm.features is not None and not any(l.trainable for l in p05._application_of(tm).layers if l.weights)
