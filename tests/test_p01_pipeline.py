"""Paper 1's pipeline functions as the notebook calls them: code scalings, the AE trainer's early
stopping, run units that keep their codes, and the tables and paired claims built from records."""

import numpy as np
import pandas as pd
import pytest
from imgclf import stats
from imgclf.papers.p01_two_stage_autoencoder import config as p01_config
from imgclf.papers.p01_two_stage_autoencoder import pipeline as pl
from imgclf.runs import Runs


def test_code_scalings_give_the_ranges_the_classifiers_need():
    rng = np.random.default_rng(0)
    train, test = rng.normal(3, 5, (200, 8)), rng.normal(3, 9, (50, 8))
    mm = pl.code_scaler(train, "minmax").transform(test)
    assert mm.min() >= 0.0 and mm.max() <= 1.0  # clipped: the RBMs' Bernoulli range
    sd = pl.code_scaler(train, "standard").transform(train)
    np.testing.assert_allclose(sd.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(sd.std(0), 1, atol=1e-9)
    sg = pl.code_scaler(train, "sigmoid").transform(test)
    assert sg.min() > 0.0 and sg.max() < 1.0
    np.testing.assert_allclose(sg, 1 / (1 + np.exp(-pl.code_scaler(train, "standard").transform(test))))
    with pytest.raises(ValueError, match="scaling"):
        pl.code_scaler(train, "zscore")


def test_early_stopping_with_min_delta_stops_before_the_cap():
    rng = np.random.default_rng(1)
    x = rng.random((256, 30)).astype("float32")
    norm = pl.make_normalizer().fit(x)
    _, _, hist = pl.fit_autoencoder(x[:224], x_val=x[224:], norm=norm, hidden=(16, 4), a=10.0, epochs=200,
                                    batch_size=32, learning_rate=1e-3, patience=3, min_delta=1e-3, seed=0)
    assert hist["epochs_run"] < 200


def test_ae_run_unit_keeps_codes_and_is_reused(tmp_path):
    cfg = p01_config.Config(profile="smoke", ae_epochs=2, ae_batch_size=32)
    rng = np.random.default_rng(2)
    x_tr, x_te = rng.random((120, 784)).astype("float32"), rng.random((20, 784)).astype("float32")
    s = pl.make_set("MNIST", x_tr, np.arange(120) % 10, x_te, np.arange(20) % 10, seed=0)
    runs = Runs(tmp_path)
    res, codes = pl.plain_ae(runs, cfg, s)
    assert codes["train"].shape == (120, 64) and codes["test"].shape == (20, 64)
    assert {f"noisy{i}" for i in range(len(cfg.noise_levels))} <= set(codes)
    again, codes2 = pl.plain_ae(Runs(tmp_path), cfg, s)
    assert again == res and np.array_equal(codes["train"], codes2["train"])
    assert runs.ran and not runs.reused


def _records():
    rows = []
    for seed, (dnn, dbn) in enumerate([(0.90, 0.85), (0.92, 0.86), (0.91, 0.84)]):
        rows += [{"data set": "MNIST", "seed": seed, "table": "Table 1", "model": "DNN", "noise %": None, "accuracy": dnn},
                 {"data set": "MNIST", "seed": seed, "table": "Table 1", "model": "DBN", "noise %": None, "accuracy": dbn}]
    return pd.DataFrame(rows)


def test_tables_and_paired_claims_from_records():
    rec = _records()
    paper = pd.DataFrame({"DNN": [0.93], "DBN": [0.98]}, index=pd.Index(["MNIST"], name="data set"))
    t = pl.vs_paper(paper, rec, "Table 1")
    assert t.loc[("MNIST", "DNN"), "paper"] == 0.93
    assert t.loc[("MNIST", "DNN"), "ours"] == stats.summarize([0.90, 0.92, 0.91])
    p = pl.paired(rec, ("Table 1", "DBN"), ("Table 1", "DNN"), "MNIST")
    assert p.diff.n == 3 and p.diff.mean == pytest.approx(-0.06) and p.verdict() == "below"
    # only seeds both cells ran are paired
    p2 = pl.paired(rec[~((rec["model"] == "DBN") & (rec["seed"] == 2))], ("Table 1", "DBN"), ("Table 1", "DNN"), "MNIST")
    assert p2.diff.n == 2
    cells = pl.summary_table(rec, "Table 1")
    assert cells.loc["MNIST", "DBN"].n == 3
