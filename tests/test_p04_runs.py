"""Paper 4 as run units: evolution resumes from its per-generation checkpoint with the same results,
TF32 is off wherever the k-NN fitness is computed, the controls and Table 2."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from imgclf.runs import DamagedRecord
import tensorflow as tf
from imgclf.papers import p04_knn_slicing_evolution
from imgclf.papers.p04_knn_slicing_evolution import pipeline as p04, published
from imgclf.runs import Runs

from test_evolve import TINY, synthetic_digits


class Killed(RuntimeError):
    """Stands in for a kill between two generations."""


def kill_at(layer, gen):
    def hook(lay, g, state):
        if (lay, g) == (layer, gen):
            raise Killed(f"killed after layer {lay} generation {g}")
    return hook


@pytest.fixture(scope="module")
def tiny():
    x, y = synthetic_digits(200, seed=4)
    conv = p04.random_conv_layers(TINY, seed=5)
    # a poor layer-1 start (all features dead) so that every run changes its kernels
    conv[0] = (np.full_like(conv[0][0], -0.3), np.full_like(conv[0][1], -0.1))
    return dict(fit=(x[:80], y[:80], x[80:140], y[80:140]), eval=(x[:140], y[:140], x[140:], y[140:]), conv=conv)


TINY_CFG = dataclasses.replace(p04_knn_slicing_evolution.config.Config(), popsize=6, k=3, pop_chunk=4, image_batch=500,
                               random_generations=3, sigma_random=3.0, pso_spread_random=3.0, pso_vmax=1.0)
KW = dict(generations=4, popsize=6, k=3, seed=0, sigma=3.0, pso_spread=3.0, pso_vmax=1.0, verbose=False)


def same_history(a: pd.DataFrame, b: pd.DataFrame):
    cols = [c for c in a.columns if c != "elapsed"]
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))


@pytest.mark.parametrize("method", ["cma", "pso"])
@pytest.mark.parametrize("kill", [(1, 2), (2, 3)])
def test_evolution_killed_and_run_again_ends_as_an_uninterrupted_run(tiny, tmp_path, method, kill):
    whole = p04.optimise_serial(method, tiny["conv"], *tiny["fit"], checkpoint_dir=tmp_path / "a", **KW)
    assert whole.resumed_at == [0, 0]
    with pytest.raises(Killed):
        p04.optimise_serial(method, tiny["conv"], *tiny["fit"], checkpoint_dir=tmp_path / "b",
                            on_generation=kill_at(*kill), **KW)
    stored = json.loads((tmp_path / "b" / f"layer{kill[0]}.json").read_text())["generations"]
    assert len(stored) == kill[1] + 1  # generations 0..kill recorded before the kill
    again = p04.optimise_serial(method, tiny["conv"], *tiny["fit"], checkpoint_dir=tmp_path / "b", **KW)
    # resumed, not restarted: layer 1 replayed without evaluation when it had finished
    assert again.resumed_at == ([kill[1] + 1, 0] if kill[0] == 1 else [KW["generations"] + 1, kill[1] + 1])
    for (ka, ba), (kb, bb) in zip(whole.conv, again.conv):
        np.testing.assert_array_equal(ka, kb)
        np.testing.assert_array_equal(ba, bb)
    assert again.fitness == whole.fitness and again.fitness_start == whole.fitness_start
    same_history(whole.history, again.history)
    assert whole.fitness[-1] > whole.fitness_start  # the runs went somewhere, so equality means something
    assert (np.diff(again.history["elapsed"].to_numpy()) >= 0).all()  # the clock continues across the resume


def test_per_filter_search_killed_and_run_again_ends_as_an_uninterrupted_run(tiny, tmp_path):
    kw = {**KW, "generations": 2, "search": "filter", "score": "soft-loo"}
    whole = p04.optimise_serial("cma", tiny["conv"], *tiny["fit"], checkpoint_dir=tmp_path / "a", **kw)
    def kill_in_layer2_filter2(layer, gen, state):
        if (layer, gen) == (2, 1) and (tmp_path / "b" / "layer2_filter2.json").exists():
            raise Killed("killed in layer 2's third filter")

    with pytest.raises(Killed):
        p04.optimise_serial("cma", tiny["conv"], *tiny["fit"], checkpoint_dir=tmp_path / "b",
                            on_generation=kill_in_layer2_filter2, **kw)
    again = p04.optimise_serial("cma", tiny["conv"], *tiny["fit"], checkpoint_dir=tmp_path / "b", **kw)
    assert again.resumed_at[0] == TINY[0] * 3  # layer 1's filters all replayed (3 generations each)
    for (ka, ba), (kb, bb) in zip(whole.conv, again.conv):
        np.testing.assert_array_equal(ka, kb)
        np.testing.assert_array_equal(ba, bb)
    assert again.fitness == whole.fitness
    same_history(whole.history, again.history)
    assert sorted(whole.history["filter"].unique()) == list(range(max(TINY)))
    assert whole.fitness[-1] > whole.fitness_start


def test_a_checkpoint_of_other_settings_is_named_and_the_run_starts_over(tiny, tmp_path):
    with pytest.raises(Killed):
        p04.optimise_serial("cma", tiny["conv"], *tiny["fit"], checkpoint_dir=tmp_path, on_generation=kill_at(1, 1), **KW)
    with pytest.warns(DamagedRecord, match="other settings"):  # never blocks the unit for good
        over = p04.optimise_serial("cma", tiny["conv"], *tiny["fit"], checkpoint_dir=tmp_path, **{**KW, "sigma": 2.0})
    fresh = p04.optimise_serial("cma", tiny["conv"], *tiny["fit"], checkpoint_dir=tmp_path / "fresh", **{**KW, "sigma": 2.0})
    assert over.fitness == fresh.fitness


def test_evolution_unit_resumes_and_is_then_reused(tiny, tmp_path):
    cfg = TINY_CFG
    args = ("pso", "random", tiny["conv"], tiny["fit"], tiny["eval"], 1)
    ref, _ = p04.evolve(Runs(tmp_path / "a", log=lambda m: None), cfg, *args, label="tiny", verbose=False)
    runs = Runs(tmp_path / "b", log=lambda m: None)
    with pytest.raises(Killed):
        p04.evolve(runs, cfg, *args, label="tiny", on_generation=kill_at(2, 1), verbose=False)
    assert not list((tmp_path / "b").glob("*/result.json")) and list((tmp_path / "b").glob("*/checkpoint/layer2.json"))
    res, kern = p04.evolve(runs, cfg, *args, label="tiny", verbose=False)
    assert runs.ran and res["resumed_at"] == [4, 2]
    for k in ("fitness_start", "fitness_per_layer", "test_accuracy", "fitness_ref_test_accuracy"):
        assert res[k] == ref[k]
    same_history(pd.DataFrame(ref["history"]), pd.DataFrame(res["history"]))
    assert not list((tmp_path / "b").glob("*/checkpoint"))  # a finished unit drops its checkpoint
    again = Runs(tmp_path / "b", log=lambda m: None)
    res2, kern2 = p04.evolve(again, cfg, *args, label="tiny", verbose=False)
    assert again.reused and not again.ran and res2 == res
    np.testing.assert_array_equal(kern2[1][0], kern[1][0])


def test_a_spent_budget_stops_an_evolution_at_a_generation_and_the_next_run_resumes_it(tiny, tmp_path):
    cfg = TINY_CFG
    args = ("cma", "random", tiny["conv"], tiny["fit"], tiny["eval"], 2)
    ref, _ = p04.evolve(Runs(tmp_path / "a", log=lambda m: None), cfg, *args, label="tiny", verbose=False)
    runs = Runs(tmp_path / "b", budget_minutes=1e-9, log=lambda m: None)
    runs.budget_spent = lambda: runs.elapsed_minutes() > 0 and bool(list((tmp_path / "b").glob("*/checkpoint/layer1.json")))
    assert p04.evolve(runs, cfg, *args, label="tiny", verbose=False) == (None, None)
    assert runs.stopped and not list((tmp_path / "b").glob("*/result.json"))
    res, _ = p04.evolve(Runs(tmp_path / "b", log=lambda m: None), cfg, *args, label="tiny", verbose=False)
    assert res["resumed_at"][0] >= 1 and res["fitness_per_layer"] == ref["fitness_per_layer"]
    same_history(pd.DataFrame(ref["history"]), pd.DataFrame(res["history"]))


# ---- TF32 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["population", "per_individual", "knn_head"])
def test_tf32_is_turned_off_where_the_fitness_is_computed(tiny, where):
    tf.config.experimental.enable_tensor_float_32_execution(True)
    try:
        conv, data = tiny["conv"], tiny["fit"]
        if where == "population":
            p04.PopulationFitness(conv, 1, *data, k=3)
        elif where == "per_individual":
            p04.fitness_per_individual(conv, 1, p04.flatten_layer(conv[1]), *data, k=3)
        else:
            p04.KNNHead(3).fit(np.zeros((5, 2)), np.arange(5))
        assert not tf.config.experimental.tensor_float_32_execution_enabled()
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(False)


# ---- controls and Table 2 ---------------------------------------------------------------------
def test_raw_pixel_control_is_the_k_nn_on_pixels():
    from sklearn.neighbors import KNeighborsClassifier

    x, y = synthetic_digits(150, seed=9)
    want = KNeighborsClassifier(9, algorithm="brute").fit(x[:100].reshape(100, -1), y[:100]).score(x[100:].reshape(50, -1), y[100:])
    assert p04.knn_raw_pixels(x[:100], y[:100], x[100:], y[100:], 9) == pytest.approx(want)


def test_table2_puts_controls_beside_every_evolved_row_and_maps_the_papers_rows():
    cols = ["500/250, 2 epochs", "500/250, 5 epochs"]  # the settings as run
    columns = dict(zip(cols, published.TABLE2.columns))
    cma, pso_ft = p04.row_random("cma", "filter"), p04.row_finetune("pso", "layer")
    cells = {(cma, cols[0]): [0.90, 0.94], (p04.ROW_RANDOM_KERNELS, cols[0]): [0.85, 0.87],
             (p04.ROW_RAW, cols[0]): [0.80], (pso_ft, cols[0]): [0.95], ("CNN 8", cols[0]): [0.7]}
    mean, sd, n = p04.table2(cells, cols)
    assert mean.loc[cma, cols[0]] == pytest.approx(92.0)
    assert sd.loc[cma, cols[0]] == pytest.approx(100 * np.std([0.90, 0.94], ddof=1))
    assert n.loc[cma, cols[1]] == 0 and np.isnan(mean.loc["CNN 8", cols[1]])
    long = p04.table2_long(published.TABLE2, mean, sd, n, columns)
    row = long.loc[(cma, cols[0])]
    assert row["paper"] == 97.5 and row["paper_setting"] == "4000/1000, 5 epochs"
    assert row["control: random kernels"] == 86.0 and row["control: raw pixels"] == 80.0
    assert row["ours - random kernels"] == pytest.approx(6.0)
    assert long.loc[(pso_ft, cols[0]), "ours - random kernels"] == pytest.approx(9.0)
    assert pd.isna(long.loc[(p04.ROW_RAW, cols[0]), "paper"]) and pd.isna(long.loc[(pso_ft, cols[0]), "paper"])
    assert long.loc[("CNN 8", cols[1]), "paper"] == 96.5  # the second setting stands for the 20-epoch column
    shown = p04.table2_display(published.TABLE2, mean, sd, n, columns)
    assert shown.loc[cma, (f"ours: {cols[0]}", "ours")] == "92.00 ± 2.83 (2 seeds)"
    assert shown.loc[cma, (f"ours: {cols[1]}", "ours")] == "not run"
    assert shown.loc["CNN 8", ("paper: 4000/1000, 5 epochs", "paper")] == "87.5"
    assert shown.loc[p04.ROW_RAW, ("paper: 4000/1000, 5 epochs", "paper")] == ""


def test_backprop_training_is_a_run_unit_reused_with_its_weights(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (40, 28, 28, 1)).astype(np.float32), np.arange(40) % 10
    cfg = dataclasses.replace(p04_knn_slicing_evolution.config.Config(), batch_size=20, learning_rate=1e-3, seed=0)
    tiny_setting = p04.Setting("tiny", x[:30], y[:30], x[30:], y[30:], 1, ())
    runs = Runs(tmp_path, log=lambda m: None)
    r1, m1 = p04.fit_backprop(runs, cfg, 8, tiny_setting)
    assert runs.ran == ["backprop CNN 8 [tiny]"] and 0 <= r1["accuracy"] <= 1
    assert not any(np.array_equal(a, b) for a, b in zip(m1.get_weights(), p04.build_mnist_cnn(8).get_weights()) if a.ndim > 1)
    again = Runs(tmp_path, log=lambda m: None)
    r2, m2 = p04.fit_backprop(again, cfg, 8, tiny_setting)
    assert again.reused == ["backprop CNN 8 [tiny]"] and not again.ran and r2 == r1
    for a, b in zip(m1.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    spent = Runs(tmp_path / "other", log=lambda m: None, budget_minutes=1e-9)
    assert p04.fit_backprop(spent, cfg, 8, tiny_setting) == (None, None)
