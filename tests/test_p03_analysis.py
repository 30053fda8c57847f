"""Paper 3's paired read-outs: SGD against Adam and lr 0.001 against 0.01 cell by cell over the
test images and over the cells, every run against the raw-pixel k-NN control."""

import numpy as np
import pytest

from imgclf.papers.p03_mnist_deep_cnns import analysis

pytestmark = pytest.mark.portable  # no TensorFlow here: runs under every Keras backend

N = 2000
Y = np.random.default_rng(0).integers(0, 10, N)


def predictions(accuracy: float, seed: int, base: np.ndarray | None = None) -> np.ndarray:
    """Predictions right on about ``accuracy`` of the images (wrong ones shifted by one class);
    with ``base``, right on a subset of where ``base`` is right (so never better than it)."""
    rng = np.random.default_rng(seed)
    right = rng.random(N) < accuracy
    if base is not None:
        right &= base == Y
    return np.where(right, Y, (Y + 1) % 10)


def run(arch, opt, lr, y_pred, status="learning"):
    return {"arch": arch, "optimizer": opt, "learning_rate": lr, "y_pred": y_pred,
            "accuracy": float(np.mean(y_pred == Y)), "status": status}


def grid(adam_gap: float):
    """3 models x 2 learning rates; SGD right on ~97 %, Adam on a subset ``adam_gap`` smaller."""
    runs = []
    for i, arch in enumerate(("vgg16", "googlenet", "resnet18")):
        for j, lr in enumerate((0.001, 0.01)):
            sgd = predictions(0.97 - 0.01 * j, 10 * i + j)
            runs.append(run(arch, "sgd", lr, sgd))
            adam = sgd if adam_gap == 0 else predictions(1 - adam_gap / (0.97 - 0.01 * j), 100 + 10 * i + j, base=sgd)
            runs.append(run(arch, "adam", lr, adam))
    return runs


def test_sgd_against_adam_is_paired_cell_by_cell_and_over_the_cells():
    runs = grid(adam_gap=0.05)
    table, over = analysis.pairs(runs, Y, "optimizer", "sgd", "adam")
    assert len(table) == 6 and set(table.index.get_level_values("held fixed")) == {"lr 0.001", "lr 0.01"}
    for (model, held), row in table.iterrows():
        sgd = next(r for r in runs if r["optimizer"] == "sgd" and f"lr {r['learning_rate']:g}" == held
                   and analysis.ARCH_NAMES[r["arch"]] == model)
        adam = next(r for r in runs if r["optimizer"] == "adam" and r["learning_rate"] == sgd["learning_rate"]
                    and r["arch"] == sgd["arch"])
        assert row["difference (points)"] == pytest.approx(100 * (sgd["accuracy"] - adam["accuracy"]))
        assert row["95 % CI low"] > 0 and row["verdict"] == "beats"
    assert over.diff.n == 6 and over.verdict() == "beats" and over.a == "SGD" and over.b == "Adam"
    # the same predictions: no difference, a tie on every cell and over the cells
    table, over = analysis.pairs(grid(adam_gap=0.0), Y, "optimizer", "sgd", "adam")
    assert set(table["verdict"]) == {"tie"} and over.verdict() == "tie"


def test_a_cell_without_its_partner_is_left_out_and_learning_rates_pair_by_model_and_optimizer():
    runs = [r for r in grid(adam_gap=0.05) if not (r["arch"] == "vgg16" and r["optimizer"] == "adam" and r["learning_rate"] == 0.01)]
    table, over = analysis.pairs(runs, Y, "optimizer", "sgd", "adam")
    assert len(table) == 5 and over.diff.n == 5
    table, over = analysis.pairs(runs, Y, "learning_rate", 0.001, 0.01)
    assert len(table) == 5 and over.diff.n == 5 and over.a == "lr 0.001"
    row = table.loc[("ResNet-18", "SGD")]
    r1 = next(r for r in runs if r["arch"] == "resnet18" and r["optimizer"] == "sgd" and r["learning_rate"] == 0.001)
    r2 = next(r for r in runs if r["arch"] == "resnet18" and r["optimizer"] == "sgd" and r["learning_rate"] == 0.01)
    assert row["difference (points)"] == pytest.approx(100 * (r1["accuracy"] - r2["accuracy"]))
    with pytest.raises(ValueError, match="factor"):
        analysis.pairs(runs, Y, "model", "vgg16", "resnet18")


def test_a_run_that_did_not_learn_is_shown_but_left_out_of_the_comparison_over_cells():
    runs = grid(adam_gap=0.05)
    diverged = next(r for r in runs if r["arch"] == "googlenet" and r["optimizer"] == "adam" and r["learning_rate"] == 0.01)
    diverged.update(y_pred=np.zeros(N, int), accuracy=float("nan"), status="diverged (NaN loss)")
    table, over = analysis.pairs(runs, Y, "optimizer", "sgd", "adam")
    row = table.loc[("GoogLeNet", "lr 0.01")]
    assert len(table) == 6 and not row["both learned"] and row["Adam status"] == "diverged (NaN loss)"
    assert row["Adam (%)"] == pytest.approx(100 * np.mean(Y == 0))  # from its predictions, not the NaN
    assert over.diff.n == 5 and table["both learned"].sum() == 5
    assert analysis.verdict_counts(table) == "beats in 6, tie in 0, below in 0 of 6 pairs"


def test_the_interval_over_the_test_images_is_paired_and_exact():
    base = predictions(0.97, 3)
    wrong = np.flatnonzero(base != Y)
    # 30 images right under a and wrong under b, none the other way: 0.3 points over 10,000 images is
    # inside what two independent samples of 97 % would give (about +-0.47), but paired it is clear
    y = np.concatenate([Y] * 5)
    a_pred = np.concatenate([base] * 5)
    b_pred = a_pred.copy()
    fix = np.concatenate([wrong + i * N for i in range(5)])[:30]
    a_pred[fix] = y[fix]
    p = analysis.over_images({"y_pred": a_pred}, {"y_pred": b_pred}, y)
    assert p.diff.mean == pytest.approx(0.3) and p.verdict() == "beats"
    assert p.diff.lo == pytest.approx(100 * (2 * 0.884295 - 1) * 30 / 10000, rel=1e-4)  # Clopper-Pearson of 30/30
    # 4 images one way, none the other: McNemar's exact test gives p = 0.125, so no verdict (a
    # t-interval over the 0/100 differences would say "beats")
    a4 = b_pred.copy()
    a4[fix[:4]] = y[fix[:4]]
    assert analysis.over_images({"y_pred": a4}, {"y_pred": b_pred}, y).verdict() == "tie"
    # the same accuracy on different images: a tie; the same predictions: exactly 0
    swap = b_pred.copy()
    swap[fix[:15]] = y[fix[:15]]
    right = np.flatnonzero(swap == y)[:15]
    swap[right] = (y[right] + 1) % 10
    assert analysis.over_images({"y_pred": swap}, {"y_pred": b_pred}, y).verdict() == "tie"
    same = analysis.over_images({"y_pred": b_pred}, {"y_pred": b_pred}, y)
    assert (same.diff.mean, same.diff.lo, same.diff.hi, same.verdict()) == (0, 0, 0, "tie")


def test_the_raw_pixel_control_and_the_runs_against_it():
    # two classes of 28x28 images told apart by which half is bright: k-NN on pixels gets them all
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    x = rng.integers(0, 60, (300, 28, 28)).astype(np.uint8)
    x[y == 1, :14] += 150
    x[y == 0, 14:] += 150
    ctl = analysis.raw_pixel_knn(x[:200], y[:200], x[200:], y[200:])
    assert ctl["accuracy"] == pytest.approx(np.mean(ctl["y_pred"] == y[200:])) and ctl["accuracy"] > 0.95
    shuffled = analysis.raw_pixel_knn(x[:200], rng.permutation(y[:200]), x[200:], y[200:])
    assert shuffled["accuracy"] < 0.75  # labels that carry nothing: near chance
    runs = grid(adam_gap=0.05)
    control = {"accuracy": 0.9, "y_pred": predictions(0.9, 7)}
    table = analysis.versus_control(runs, control, Y, "k-NN")
    assert len(table) == 12 and table["verdict"].isin(["beats", "below", "tie"]).all()
    best = table["run (%)"].idxmax()  # about 97 %, against 90 %
    assert table.loc[best, "verdict"] == "beats" and table.loc[best, "difference (points)"] > 5
    assert np.allclose(table["difference (points)"], table["run (%)"] - table["k-NN (%)"])
    below = {**runs[0], "y_pred": predictions(0.8, 8)}
    assert analysis.versus_control([below], control, Y, "k-NN")["verdict"].item() == "below"
    with pytest.raises(ValueError, match="predictions for"):
        analysis.correct(np.zeros(3), np.zeros(4))


def test_the_forest_plot_draws_each_pair_on_its_interval_in_its_verdicts_colour():
    import matplotlib

    matplotlib.use("Agg")
    from imgclf import plots

    table, _ = analysis.pairs(grid(adam_gap=0.05), Y, "optimizer", "sgd", "adam")
    tie, _ = analysis.pairs(grid(adam_gap=0.0), Y, "optimizer", "sgd", "adam")
    fig = plots.paired_differences({"SGD − Adam": table, "same predictions": tie, "nothing": None}, title="t")
    top, bottom = fig.axes[0], fig.axes[1]
    assert [t.get_text() for t in top.get_yticklabels()] == [" / ".join(i) for i in table.index]
    assert list(top.get_yticks()) == list(range(len(table)))[::-1]  # the first row on top
    segments = [ln for ln in top.lines if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] != ln.get_xdata()[1]]
    assert sorted(tuple(ln.get_xdata()) for ln in segments) == sorted(zip(table["95 % CI low"], table["95 % CI high"]))
    assert {ln.get_color() for ln in segments} == {plots.VERDICT_COLORS["beats"]}
    assert {ln.get_color() for ln in bottom.lines if ln.get_marker() == "o"} == {plots.VERDICT_COLORS["tie"]}
    with pytest.raises(ValueError, match="non-empty"):
        plots.paired_differences({"x": None})
