"""k-NN slicing: the k-NN head, the batched population fitness (imgclf.models.knn), CMA-ES and PSO
(imgclf.papers.p04_knn_slicing_evolution.pipeline)."""

import numpy as np
import pytest
from imgclf.papers.p04_knn_slicing_evolution import pipeline as evolve
from sklearn.neighbors import KNeighborsClassifier


def synthetic_digits(n: int, seed: int = 0, classes: int = 10):
    """Small 12x12 images: one random template per class under strong noise (learnable, not trivial:
    random conv features give 60-95 % k-NN accuracy)."""
    rng = np.random.default_rng(seed)
    templates = rng.uniform(0, 1, (classes, 12, 12)) > 0.6
    y = np.arange(n) % classes
    x = templates[y] * 0.5 + rng.uniform(0, 1.0, (n, 12, 12))
    return x.astype(np.float32)[..., None], y


TINY = (4, 6)  # filters of a tiny two-layer conv net on 12x12 images


@pytest.fixture(scope="module")
def tiny():
    x, y = synthetic_digits(160)
    return dict(x_ref=x[:120], y_ref=y[:120], x_val=x[120:], y_val=y[120:],
                conv=evolve.random_conv_layers(TINY, seed=1))


# ---- the k-NN head ------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 4, 9])
def test_knn_head_agrees_with_sklearn(k):
    rng = np.random.default_rng(k)
    classes = np.array([2, 5, 7, 11])  # not 0..n-1: the label <-> code mapping is exercised
    ref, labels = rng.normal(size=(300, 16)), rng.choice(classes, 300)
    q = rng.normal(size=(120, 16))
    ours = evolve.KNNHead(k, batch=50).fit(ref, labels).predict(q)
    sk = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(ref, labels)
    np.testing.assert_array_equal(ours, sk.predict(q))
    # the votes, counted here from scikit-learn's neighbours: at even k many are tied, and a tie must
    # go to the lowest tied label (so this test fails if the tie rule is wrong, not only if it differs)
    idx = sk.kneighbors(q, return_distance=False)
    counts = np.stack([np.bincount(np.searchsorted(classes, labels[i]), minlength=len(classes)) for i in idx])
    tied = (counts == counts.max(1, keepdims=True)).sum(1) > 1
    if k in (2, 4):
        assert tied.sum() >= 20
    np.testing.assert_array_equal(ours[tied], classes[np.argmax(counts[tied], axis=1)])
    np.testing.assert_array_equal(ours[~tied], classes[np.argmax(counts[~tied], axis=1)])


def test_knn_tied_vote_goes_to_the_lowest_label_like_sklearn():
    ref = np.array([[0.0], [1.0], [3.0], [3.5]])
    labels = np.array([7, 3, 7, 3])
    q = np.array([[0.4], [3.2]])  # k=2: one vote for 7 and one for 3 each
    ours = evolve.KNNHead(2).fit(ref, labels).predict(q)
    theirs = KNeighborsClassifier(n_neighbors=2).fit(ref, labels).predict(q)
    np.testing.assert_array_equal(ours, [3, 3])
    np.testing.assert_array_equal(ours, theirs)


def test_knn_head_rejects_k_larger_than_reference_set():
    with pytest.raises(ValueError, match="k=5"):
        evolve.KNNHead(5).fit(np.zeros((3, 2)), [0, 1, 2])


# ---- the network and genomes ----------------------------------------------------------------
def test_classic_cnn_parameter_counts():
    full = evolve.build_mnist_cnn(128)
    assert full.count_params() == 1_199_882
    assert sum(a.size + b.size for a, b in evolve.conv_layers(full)) == 18_816
    assert evolve.sliced_model(evolve.conv_layers(full)).output_shape == (None, 9216)
    # the two-pool variant gives the paper's counts of its narrow networks (122k ... 31.7k)
    assert [evolve.build_mnist_cnn(w, pool_after_each=True).count_params() for w in (64, 8)] == [121_930, 31_714]


def test_genome_round_trip():
    layer = evolve.random_conv_layers((3, 5), seed=2)[1]
    k, b = evolve.unflatten_layer(evolve.flatten_layer(layer), layer[0].shape)
    np.testing.assert_array_equal(k, layer[0])
    np.testing.assert_array_equal(b, layer[1])
    with pytest.raises(ValueError):
        evolve.unflatten_layer(np.zeros(7), layer[0].shape)


# ---- batched fitness == per-individual fitness ------------------------------------------------
@pytest.mark.parametrize("layer_index", [0, 1])
def test_batched_fitness_equals_per_individual(tiny, layer_index):
    conv = tiny["conv"]
    rng = np.random.default_rng(layer_index)
    x0 = evolve.flatten_layer(conv[layer_index])
    pop = x0 + rng.normal(0, 2 * evolve.glorot_std(conv[layer_index]), (5, len(x0)))
    data = [tiny[k] for k in ("x_ref", "y_ref", "x_val", "y_val")]
    ev = evolve.PopulationFitness(conv, layer_index, *data, k=3, pop_chunk=2)  # 3 chunks, the last padded
    batched = ev(pop)
    model = evolve.sliced_model(conv, tiny["x_ref"].shape[1:])
    single = [evolve.fitness_per_individual(conv, layer_index, g, *data, k=3, model=model) for g in pop]
    np.testing.assert_array_equal(batched, single)
    assert len(set(np.round(single, 6))) > 1  # the candidates differ, so the comparison means something
    assert ev.evaluations == 5


# ---- optimisers improve a poor start ---------------------------------------------------------
def poor_start(conv):
    """Layer 1's kernels and biases all negative: ReLU kills every feature, the k-NN votes blindly
    (layer 2 keeps its random start, so a revived layer 1 shows up in the fitness)."""
    (k1, b1), rest = conv[0], conv[1:]
    return [(np.full_like(k1, -0.3), np.full_like(b1, -0.1)), *rest]


@pytest.mark.parametrize("method", ["cma", "pso"])
def test_optimiser_improves_fitness_from_a_poor_start(tiny, method, capsys):
    start = poor_start(tiny["conv"])
    data = [tiny[k] for k in ("x_ref", "y_ref", "x_val", "y_val")]
    res = evolve.optimise_serial(method, start, *data, generations=4, popsize=8, k=3, seed=0,
                                 sigma=3.0, pso_spread=3.0, pso_vmax=1.0, log_every=1)
    h = res.history
    start_fit = evolve.PopulationFitness(start, 0, *data, k=3)(evolve.flatten_layer(start[0])[None])[0]
    assert start_fit <= 0.15  # chance level for 10 classes is 0.1
    assert res.fitness[-1] >= start_fit + 0.3
    assert list(h.layer.unique()) == [1, 2] and h.generation.max() == 4
    assert (np.diff(h["elapsed"].to_numpy()) >= 0).all()
    assert (np.diff(h.groupby("layer")["best_so_far"].cummax()) >= 0).all()
    assert "gen    4/4" in capsys.readouterr().out
    # the returned kernels are the ones that scored the reported fitness
    ev = evolve.PopulationFitness(res.conv, 1, *data, k=3)
    assert ev(evolve.flatten_layer(res.conv[1])[None])[0] == pytest.approx(res.fitness[-1])


def test_pso_velocity_is_the_papers_rule():
    v, x, pbest, gbest = np.array([0.1, -0.2]), np.array([1.0, 1.0]), np.array([2.0, 0.0]), np.array([0.0, 3.0])
    u1, u2 = np.array([0.5, 0.25]), np.array([0.1, 1.0])
    got = evolve.pso_velocity(v, x, pbest, gbest, u1, u2, c1=2.0, c2=1.0, vmax=10.0)
    # v + c1*u1*(pbest - x) + c2*u2*(gbest - x), by hand
    np.testing.assert_allclose(got, [0.1 + 2 * 0.5 * 1.0 + 1 * 0.1 * -1.0, -0.2 + 2 * 0.25 * -1.0 + 1 * 1.0 * 2.0])
    np.testing.assert_allclose(evolve.pso_velocity(v, x, pbest, gbest, u1, u2, 2.0, 1.0, vmax=0.5), [0.5, 0.5])


def _pso_states(c1, c2, vmax=100.0):
    states = []
    evolve.run_pso(lambda pop: -np.sum((pop - 3.0) ** 2, axis=1), np.zeros(6), generations=12, particles=8, spread=2.0,
                   vmax=vmax, c1=c1, c2=c2, seed=3, verbose=False, on_generation=lambda layer, gen, st: states.append(st))
    return states


@pytest.mark.parametrize("attractor", ["pbest", "gbest"])
def test_pso_pulls_each_particle_towards_the_right_best(attractor):
    """With only one of the two terms (c1 or c2 = 0) and no clamp, each speed change
    v(g+1) - v(g) = c * U(0,1) * (attractor - x(g)): componentwise of the attractor's sign and at most
    c times as long. Swapping personal and global best (in the rule or in the call) breaks this for
    every particle that is not the global best."""
    c1, c2 = (2.0, 0.0) if attractor == "pbest" else (0.0, 2.0)
    states = _pso_states(c1, c2)
    checked = 0
    for a, b in zip(states[:-1], states[1:]):
        pull = (a["pbest"] if attractor == "pbest" else np.broadcast_to(a["gbest"], a["x"].shape)) - a["x"]
        dv = b["v"] - a["v"]
        np.testing.assert_allclose(dv[pull == 0], 0, atol=1e-12)
        ratio = dv[pull != 0] / pull[pull != 0]
        assert ratio.size == 0 or (ratio.min() >= -1e-9 and ratio.max() <= 2.0 + 1e-9)
        checked += int(((np.abs(a["pbest"] - a["gbest"]) > 1e-6) & (pull != 0)).any(axis=1).sum())
    assert checked > 20  # many particles whose personal best is not the global best
    for st in states:  # bests are bests: pbest never worse than the particle, gbest the best pbest
        assert (st["pbest_fitness"] >= st["fitness"]).all() and st["gbest_fitness"] == st["pbest_fitness"].max()


def test_pso_respects_the_velocity_clamp():
    states = _pso_states(2.0, 2.0, vmax=0.2)
    assert np.abs(np.stack([s["v"] for s in states])).max() <= 0.2 + 1e-12
    steps = np.abs(np.diff(np.stack([s["x"] for s in states]), axis=0))
    assert steps.max() <= 0.2 + 1e-12 and steps.max() > 0.19  # the clamp is reached, and holds


@pytest.mark.parametrize("dim, separable", [(50, False), (2000, True)])
def test_cma_samples_from_a_diagonal_covariance_only_in_high_dimension(dim, separable):
    """Above 1000 dimensions the sampler must keep a diagonal covariance (O(D) memory; a full one at
    18.5k dimensions is 2.7 GB), below it the full matrix: checked on the strategy that ran."""
    seen = []
    evolve.run_cma(lambda pop: -np.sum(pop ** 2, axis=1), np.ones(dim), 0.3, generations=2, popsize=6, verbose=False,
                   on_generation=lambda layer, gen, st: seen.append(st))
    es = seen[-1]["es"]
    assert [s["candidates"].shape for s in seen] == [(6, dim), (6, dim)]
    full = getattr(es.sm, "C", None)
    if separable:
        assert full is None or np.ndim(full) < 2
        assert np.shape(es.dC) == (dim,)
    else:
        assert np.shape(full) == (dim, dim)


# ---- the optimisers against random search, on fitnesses with a known optimum -----------------------
def sphere(target):
    """A batched fitness with its maximum (0) at ``target``: minus the squared distance."""
    return lambda pop: -np.sum((np.atleast_2d(pop) - target) ** 2, axis=1)


def random_search_distance(target, x0, sigma, evaluations, seed=0):
    """The same budget spent by random search: the best of ``evaluations`` draws around ``x0``."""
    draws = x0 + sigma * np.random.default_rng(seed).normal(size=(evaluations, len(x0)))
    return float(np.sqrt(np.min(np.sum((draws - target) ** 2, axis=1))))


@pytest.mark.parametrize("dim, gens", [(10, 210), (30, 600)])
def test_cma_es_reaches_a_known_optimum_that_random_search_misses(dim, gens):
    """Full-covariance CMA-ES (as on one filter) from 3 units away, on an ellipsoid of condition 1e2:
    it must get within 1e-3 of the optimum; random search with the same budget stays about a unit
    away, so the test fails when ``run_cma`` is replaced by random search (or keeps its start)."""
    rng = np.random.default_rng(dim)
    target = rng.normal(size=dim)
    x0 = target + 3 * rng.normal(size=dim) / np.sqrt(dim)
    scales = np.logspace(0, 2, dim)  # ill-conditioned: CMA-ES must learn the covariance

    def fitness(pop):
        return -np.sum(scales * (np.atleast_2d(pop) - target) ** 2, axis=1)

    r = evolve.run_cma(fitness, x0, 0.5, generations=gens, popsize=12, diagonal=False, verbose=False)
    got = float(np.linalg.norm(r.best - target))
    rs = random_search_distance(target, x0, 0.5, 12 * gens)
    assert got < 1e-3 < rs / 100, (got, rs)


def test_pso_gets_closer_to_a_known_optimum_than_random_search():
    """The paper's PSO (no inertia, clamped speed) on a 10-d sphere: it must end far closer than the
    best of as many random draws around the start."""
    target = np.full(10, 2.0)
    x0 = np.zeros(10)
    r = evolve.run_pso(sphere(target), x0, generations=200, particles=16, spread=1.0, vmax=0.5, seed=1, verbose=False)
    got = float(np.linalg.norm(r.best - target))
    rs = random_search_distance(target, x0, 1.0, 16 * 201)
    assert got < rs / 10, (got, rs)


@pytest.mark.parametrize("method", ["cma", "pso"])
def test_per_filter_search_finds_every_filter_of_a_known_layer(method):
    """The per-filter serial search on a (3, 3, 2, 3) layer whose fitness peaks at a known genome:
    each filter's search must bring that filter to its target (only its own weights move), so the
    layer ends near the optimum; a search that wrote the wrong positions, or kept the start, fails."""
    shape = (3, 3, 2, 3)
    rng = np.random.default_rng(5)
    D = int(np.prod(shape)) + shape[-1]
    target, start = rng.normal(size=D), rng.normal(size=D)
    seen = []
    fitness = sphere(target)
    genome, best, _, start_fit, rows = evolve.search_layer(
        method, lambda pop: (seen.append(np.atleast_2d(pop).copy()), fitness(pop))[1], start, shape, search="filter",
        generations=150, popsize=10, sigma0=0.5, pso_spread=1.0, pso_vmax=0.3, verbose=False)
    closer = {"cma": 0.05, "pso": 0.15}[method]  # the paper's PSO (no inertia) converges more slowly
    assert np.linalg.norm(genome - target) < closer * np.linalg.norm(start - target), np.linalg.norm(genome - target)
    assert best == pytest.approx(fitness(genome)[0]) and start_fit == pytest.approx(fitness(start)[0])
    assert sorted({r["filter"] for r in rows}) == [0, 1, 2]
    filters = [set(evolve.filter_indices(shape, j)) for j in range(3)]
    assert all(len(f) == 19 for f in filters)
    for pop in seen:  # within one generation only one filter's 19 positions vary
        varying = set(np.flatnonzero(np.ptp(pop, axis=0) > 0))
        assert any(varying <= f for f in filters), sorted(varying)


def test_filter_indices_are_the_filters_weights_and_bias():
    layer = evolve.random_conv_layers((3, 5), seed=2)[1]
    g = evolve.flatten_layer(layer)
    for j in (0, 4):
        np.testing.assert_array_equal(g[evolve.filter_indices(layer[0].shape, j)],
                                      np.concatenate([layer[0][..., j].ravel(), [layer[1][j]]]))


# ---- the soft leave-one-out fitness matches scikit-learn ------------------------------------------
@pytest.mark.parametrize("layer_index", [0, 1])
def test_soft_loo_fitness_is_the_share_of_same_label_neighbours_as_sklearn_finds_them(tiny, layer_index):
    from imgclf.models.knn import set_conv_weights
    from sklearn.neighbors import NearestNeighbors

    conv = tiny["conv"]
    rng = np.random.default_rng(layer_index)
    x0 = evolve.flatten_layer(conv[layer_index])
    pop = x0 + rng.normal(0, 2 * evolve.glorot_std(conv[layer_index]), (3, len(x0)))
    data = [tiny[k] for k in ("x_ref", "y_ref", "x_val", "y_val")]
    got = evolve.PopulationFitness(conv, layer_index, *data, k=5, pop_chunk=2, score="soft-loo")(pop)
    x, y = np.concatenate([data[0], data[2]]), np.concatenate([data[1], data[3]])
    model = evolve.sliced_model(conv, x.shape[1:])
    want = []
    for g in pop:
        layers = list(conv)
        layers[layer_index] = evolve.unflatten_layer(g, conv[layer_index][0].shape)
        set_conv_weights(model, layers)
        f = model.predict(x, verbose=0).astype(np.float64)
        idx = NearestNeighbors(n_neighbors=5).fit(f).kneighbors(return_distance=False)  # self excluded
        want.append(np.mean(y[idx] == y[:, None]))
    np.testing.assert_allclose(got, want, atol=1.5 / (5 * len(y)))  # a float32 near-tie may swap one neighbour
    assert len(set(np.round(want, 6))) > 1
