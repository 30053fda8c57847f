"""Paper 4's pipeline, in the paper's order: data, the k-NN controls, backprop (Table 1), slicing,
serial evolution of the conv kernels (CMA-ES, PSO), Table 2, the inference engine's size.

The network is the classic Keras MNIST CNN (:func:`~imgclf.models.cnns.build_mnist_cnn`): two 3x3
ReLU conv layers (32 and 64 kernels, 18,816 parameters with biases), a 2x2 max-pool, then the dense
head. *Slicing* cuts the head off and classifies the pooled conv activations (12x12x64 = 9,216
values per image) with an exact Euclidean k-NN (:class:`~imgclf.models.knn.KNNHead`).

The conv kernels are then optimised *serially* without gradients (:func:`optimise_serial`): layer
1's kernels and biases with layer 2 held fixed, then layer 2's with the new layer 1 fixed, by CMA-ES
(:func:`run_cma`, ``cma``) or PSO (:func:`run_pso`, ``deap``); a whole population is scored in one
batched pass (:class:`~imgclf.models.knn.PopulationFitness`). Each backprop training
(:func:`backprop`) and each evolution (:func:`evolution`) is a run unit (``report.runs.cached``);
an evolution records every generation (:class:`imgclf.runs.GenerationLog`) and resumes after the
last one with the same results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from ... import train
from ...data import stratified_subset
from ...models import saved_bytes
from ...models.cnns import build_mnist_cnn
from ...models.knn import (
    KNNHead,
    Layer,
    PopulationFitness,
    conv_layers,
    exact_float32,
    fitness_per_individual,
    flatten_layer,
    glorot_std,
    random_conv_layers,
    sliced_model,
    unflatten_layer,
)
from ...runs import ElapsedClock, GenerationHook, GenerationLog, GenerationLogger, check_budget, current, digest
from .config import Config

__all__ = [  # the floors' names the notebook and the tests reach through this module
    "KNNHead", "Layer", "PopulationFitness", "build_mnist_cnn", "conv_layers", "exact_float32",
    "fitness_per_individual", "flatten_layer", "glorot_std", "random_conv_layers", "sliced_model",
    "unflatten_layer",
]

FILTERS = (32, 64)  # the classic Keras MNIST CNN's conv layers (18,816 parameters with biases)


# ------------------------------------------------------------------------------------------
# 1. Data: MNIST subsets per Table 2 setting, and the fitness' own images
# ------------------------------------------------------------------------------------------
@dataclass
class Setting:
    """One Table 2 column as run: its images and epochs, and the fitness' data drawn from its
    training images (``fit_data = (x_ref, y_ref, x_val, y_val)``)."""

    column: str
    x_tr: np.ndarray
    y_tr: np.ndarray
    x_te: np.ndarray
    y_te: np.ndarray
    epochs: int
    fit_data: tuple

    @property
    def eval_data(self) -> tuple:
        return self.x_tr, self.y_tr, self.x_te, self.y_te

    @property
    def label(self) -> str:
        """The setting as run, e.g. ``"500/250, 2 epochs"`` (the paper's columns name its own)."""
        return f"{len(self.y_tr)}/{len(self.y_te)}, {self.epochs} epochs"


def prepare_images(x: np.ndarray) -> np.ndarray:
    """uint8 images ``(n, 28, 28)`` in 0..255 -> float32 ``(n, 28, 28, 1)`` in [0, 1]."""
    return (np.asarray(x, np.float32) / 255.0)[..., None]


def fitness_split(x, y, n: int, val_fraction: float, seed: int = 0):
    """The evolution's own data: ``n`` of the training images (stratified), split into a k-NN
    reference part and a validation part (``val_fraction``) that the fitness is scored on. The
    test images are never used by the fitness. Returns ``x_ref, y_ref, x_val, y_val``."""
    from sklearn.model_selection import train_test_split

    xs, ys = stratified_subset(x, y, n, seed)
    x_ref, x_val, y_ref, y_val = train_test_split(xs, ys, test_size=val_fraction, stratify=ys, random_state=seed)
    return x_ref, y_ref, x_val, y_val


def make_settings(cfg: Config, train_xy, test_xy) -> dict[str, Setting]:
    """Each of ``cfg.table2_settings`` as a :class:`Setting`: stratified subsets of MNIST's training
    and test images (``cfg.seed``), pixels in [0, 1], and its fitness split. Keys: the settings as
    run (``"500/250, 2 epochs"``; :func:`paper_columns` maps them to the paper's columns)."""
    (x_all, y_all), (xt_all, yt_all) = train_xy, test_xy
    out = {}
    for column, (n_tr, n_te, epochs) in zip(paper_columns(cfg), cfg.table2_settings):
        xtr, ytr = stratified_subset(x_all, y_all, n_tr, cfg.seed)
        xte, yte = stratified_subset(xt_all, yt_all, n_te, cfg.seed)
        xtr, xte = prepare_images(xtr), prepare_images(xte)
        fit = fitness_split(xtr, ytr, cfg.fitness_images, cfg.fitness_val_fraction, cfg.seed)
        out[column] = Setting(column, xtr, ytr, xte, yte, int(epochs), fit)
    return out


def paper_columns(cfg: Config) -> dict[str, str]:
    """Our column (the setting as run) -> the paper's Table 2 column it stands for (same order)."""
    from .published import TABLE2

    ours = [f"{a}/{b}, {e} epochs" for a, b, e in cfg.table2_settings]
    if len(set(ours)) != len(ours):
        raise ValueError(f"two Table 2 settings are the same: {ours}")
    return dict(zip(ours, TABLE2.columns))


# ------------------------------------------------------------------------------------------
# 2. Controls: a k-NN without any training
# ------------------------------------------------------------------------------------------
def knn_accuracy(conv: Sequence[Layer], x_ref, y_ref, x_test, y_test, k: int = 9) -> float:
    """Test accuracy of the sliced network: features of ``conv``, k-NN with ``x_ref`` as reference set."""
    model = sliced_model(conv, x_ref.shape[1:])
    f_ref = model.predict(x_ref, batch_size=256, verbose=0)
    f_te = model.predict(x_test, batch_size=256, verbose=0)
    return KNNHead(k).fit(f_ref, y_ref).score(f_te, y_test)


def knn_raw_pixels(x_ref, y_ref, x_test, y_test, k: int = 9) -> float:
    """Control: the k-NN on the raw pixels (no network at all), same reference and test images."""
    flat = lambda a: np.asarray(a, np.float32).reshape(len(a), -1)  # noqa: E731
    return KNNHead(k).fit(flat(x_ref), y_ref).score(flat(x_test), y_test)


def controls(cfg: Config, s: Setting, seeds: Sequence[int]) -> dict:
    """The two controls of one setting: k-NN on raw pixels, and on random kernels (one Glorot draw
    per seed), on its test images (training images as reference set) and on its fitness set."""
    rk = [knn_accuracy(random_conv_layers(FILTERS, seed=sd), *s.eval_data, cfg.k) for sd in seeds]
    return {"raw pixels": knn_raw_pixels(*s.eval_data, cfg.k), "random kernels": rk,
            "fitness set: raw pixels": knn_raw_pixels(*s.fit_data, cfg.k),
            "fitness set: random kernels": float(np.mean(
                [knn_accuracy(random_conv_layers(FILTERS, seed=sd), *s.fit_data, cfg.k) for sd in seeds]))}


# ------------------------------------------------------------------------------------------
# 3. Backprop: the full CNN and the narrow ones (Table 1), each a run unit
# ------------------------------------------------------------------------------------------
def inference_copy(model: keras.Model) -> keras.Model:
    """An uncompiled copy of ``model`` with its weights: what an inference engine stores (a trained,
    compiled model would also save its optimizer's state, e.g. Adam's two moments per weight)."""
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def weights_file_bytes(model: keras.Model) -> int:
    """Bytes of the model's weights-only ``.weights.h5`` file (the paper's "inference engine size"),
    without optimizer state."""
    return saved_bytes(inference_copy(model).save_weights, ".weights.h5")


def train_cnn(dense_units: int, x_tr, y_tr, x_te, y_te, *, epochs: int, batch_size: int = 128,
              learning_rate: float = 1e-3, seed: int = 0, desc: str = "",
              checkpoint_dir: str | Path | None = None) -> tuple[keras.Model, dict]:
    """Train :func:`build_mnist_cnn` by backprop (Adam, cross-entropy). Returns the model and
    ``{"accuracy", "seconds", "parameters", "weights_bytes"}`` (test accuracy of the softmax head).
    ``checkpoint_dir``: resume from the last finished epoch (:func:`imgclf.train.fit`)."""
    train.set_seed(seed, deterministic=None)
    model = build_mnist_cnn(dense_units)
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = train.fit(model, x_tr, y_tr, epochs=epochs, batch_size=batch_size, desc=desc or f"CNN {dense_units}",
                     checkpoint_dir=checkpoint_dir, seed=seed)
    acc = float(model.evaluate(x_te, y_te, batch_size=512, verbose=0)[1])
    return model, {"accuracy": acc, "seconds": hist["seconds"], "parameters": model.count_params(),
                   "weights_bytes": weights_file_bytes(model)}


def backprop(cfg: Config, dense_units: int, x_tr, y_tr, x_te, y_te, epochs: int) -> dict:
    """Run unit: one backprop training (resumable per epoch), its weights kept in the unit
    (``model.weights.h5``). Returns the metrics of :func:`train_cnn`."""
    unit = current()
    model, r = train_cnn(dense_units, x_tr, y_tr, x_te, y_te, epochs=epochs, batch_size=cfg.batch_size,
                         learning_rate=cfg.learning_rate, seed=cfg.seed, desc=f"CNN {dense_units}",
                         checkpoint_dir=unit.checkpoint if unit else None)
    if unit is not None:
        model.save_weights(unit.path("model.weights.h5"))
    return r


def fit_backprop(runs, cfg: Config, dense_units: int, s: Setting) -> tuple[dict | None, keras.Model | None]:
    """:func:`backprop` through ``runs`` for one width and setting, and the trained model loaded
    from its unit. ``(None, None)`` when the time budget is spent."""
    kw = dict(cfg=cfg, dense_units=dense_units, x_tr=s.x_tr, y_tr=s.y_tr, x_te=s.x_te, y_te=s.y_te, epochs=s.epochs)
    name = f"backprop CNN {dense_units} [{s.column}]"
    res = runs.cached(backprop, name=name, **kw)
    if res is None:
        return None, None
    model = build_mnist_cnn(dense_units)
    model.load_weights(_finished(runs, backprop, name, kw).path("model.weights.h5"))
    return res, model


def _finished(runs, fn, name: str, kw: dict):
    """The unit :meth:`Runs.cached` just returned, found again by its key (to load its files)."""
    unit = runs.find(fn, name=name, **kw)
    if unit is None:  # the key holds a hash of the code: it moves when a source file is edited mid-run
        raise RuntimeError(f"run unit {name!r} finished but is not found under its key: was the library's "
                           "code edited while this notebook ran? Run the notebook again (finished units are reused).")
    return unit


# ------------------------------------------------------------------------------------------
# 4. Serial evolution of the conv kernels: CMA-ES and PSO, resumable per generation
# ------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    """One optimiser run on one layer: the best genome found, its fitness and the history."""

    best: np.ndarray
    best_fitness: float
    history: list[dict] = field(default_factory=list)
    resumed_at: int = 0  # the first generation evaluated in this process (0: not resumed; all replayed: generations + 1)
    start_fitness: float = float("nan")  # the fitness of x0 itself


def run_cma(fitness: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, sigma0: float, generations: int,
            popsize: int | None = None, diagonal: bool | None = None, seed: int = 0, layer: int = 1,
            clock: ElapsedClock | None = None, log_every: int | None = None, verbose: bool = True,
            checkpoint: Path | None = None, on_generation: GenerationHook | None = None,
            row: dict | None = None) -> RunResult:
    """CMA-ES (``cma``) maximising ``fitness`` (a batched function ``(P, D) -> (P,)``) from ``x0``.

    Generation 0 is the fitness of ``x0``; then ``generations`` ask/tell rounds. Returns the best
    candidate seen (not the distribution mean). ``checkpoint``: a JSON file
    (:class:`imgclf.runs.GenerationLog`) written every generation; a run that finds it resumes after
    its last recorded generation with the same results. ``row``: extra columns of every history row.
    """
    import cma

    x0 = np.asarray(x0, np.float64)
    # Covariance: full (O(D^2)) up to 1000 dimensions, e.g. one conv-2 filter (289), separable
    # (diagonal, O(D)) above, e.g. a whole conv-2 layer (18,496): a full matrix there is 342M entries
    # and pycma's learning rates (c1 ~ 2/D^2, cmu ~ mu_eff/D^2) would not move it in any affordable
    # run. sep-CMA's rates are ~(D+2)/3 times larger, still ~1e-4..1e-3 per generation at 18.5k
    # dimensions: at that size the search is in effect an isotropic ES with step-size adaptation,
    # which is why the per-filter search exists. pycma's default learning rates are kept: raising
    # them beyond its formulas makes the covariance unstable on a noisy fitness.
    diagonal = len(x0) > 1000 if diagonal is None else diagonal
    opts = {"seed": seed + 1, "verbose": -9, "CMA_diagonal": bool(diagonal), "tolflatfitness": generations + 10,
            "tolfun": 0, "tolfunhist": 0, "tolx": 0, "tolstagnation": 10 ** 9,
            # Step size by CSA (cumulative path length), not TPA (pycma's choice from 300
            # dimensions): TPA compares two extra points along the last mean shift, a coin flip when
            # fitness differences are near the noise, so sigma random-walks; CSA's log-step is
            # unbiased under random selection, so sigma holds on a flat or noisy fitness.
            "AdaptSigma": cma.sigma_adaptation.CMAAdaptSigmaCSA}
    if popsize:
        opts["popsize"] = int(popsize)
    record = GenerationLog(checkpoint, dict(method="cma", dim=len(x0), x0=digest(x0), sigma0=float(sigma0),
                                            popsize=opts.get("popsize"), diagonal=bool(diagonal), seed=seed,
                                            adapt_sigma="CSA"))
    log = GenerationLogger("CMA-ES", layer, generations, clock or ElapsedClock(), log_every, verbose, record)
    f0 = log.fitness(0, x0[None], fitness)
    best, best_fit, evals = x0.copy(), float(f0[0]), 1
    log.log(0, x0[None], f0, evals, **(row or {}))
    es = cma.CMAEvolutionStrategy(x0, sigma0, opts)  # seeds NumPy's global stream, which ask() draws from
    for gen in range(1, generations + 1):
        cands = np.asarray(es.ask())
        fits = log.fitness(gen, cands, fitness)
        evals += len(cands)
        es.tell(list(cands), list(1.0 - fits))  # cma minimises
        i = int(np.argmax(fits))
        if fits[i] > best_fit:
            best, best_fit = cands[i].copy(), float(fits[i])
        log.log(gen, cands, fits, evals, **(row or {}))
        if on_generation is not None:
            on_generation(layer, gen, {"es": es, "candidates": cands, "fitness": fits})
    return RunResult(best, best_fit, log.rows, len(log.rows) if log.resumed_at is None else log.resumed_at, float(f0[0]))


def cma_learning_rates(popsize: int, sigma: float) -> pd.DataFrame:
    """pycma's settings for each search of the 32/64 network, as :func:`run_cma` creates them:
    dimension, covariance kind, step-size rule, population, rank-one and rank-mu learning rates
    (``c1``, ``cmu``: the share of the covariance renewed per generation) and about how many
    generations the covariance needs to adapt (``1 / (c1 + cmu)``)."""
    import cma

    rows = {}
    for what, dim in (("per layer: conv 1 (320)", 320), ("per layer: conv 2 (18,496)", 18_496),
                      ("per filter: conv 1 (10)", 10), ("per filter: conv 2 (289)", 289)):
        es = cma.CMAEvolutionStrategy(np.zeros(dim), 1.0, {"verbose": -9, "popsize": popsize, "CMA_diagonal": dim > 1000,
                                                           "AdaptSigma": cma.sigma_adaptation.CMAAdaptSigmaCSA})
        sep = dim > 1000  # sep-CMA uses its own, larger rates
        c1, cmu = (float(es.sp.c1_sep), float(es.sp.cmu_sep)) if sep else (float(es.sp.c1), float(es.sp.cmu))
        rows[what] = {"dimension": dim, "covariance": "diagonal (sep-CMA)" if dim > 1000 else "full",
                      "step size": "CSA", "popsize": es.popsize, "sigma0 (Glorot stds)": sigma,
                      "c1": c1, "cmu": cmu, "generations to adapt ~": round(1 / (c1 + cmu))}
    return pd.DataFrame(rows).T.rename_axis("search")


def _pso_creator():
    """DEAP's creator classes for PSO (created once per process)."""
    from deap import base, creator

    if not hasattr(creator, "KnnPsoFitness"):
        creator.create("KnnPsoFitness", base.Fitness, weights=(1.0,))
    if not hasattr(creator, "KnnParticle"):
        creator.create("KnnParticle", np.ndarray, fitness=creator.KnnPsoFitness, speed=None, best=None)
    return creator


def pso_velocity(v, x, pbest, gbest, u1, u2, c1: float, c2: float, vmax: float) -> np.ndarray:
    """The paper's PSO velocity update, clamped: ``v + c1*u1*(pbest - x) + c2*u2*(gbest - x)``,
    each component clipped to ``[-vmax, vmax]`` (``u1``, ``u2``: uniform random numbers per dimension)."""
    return np.clip(v + c1 * u1 * (pbest - x) + c2 * u2 * (gbest - x), -vmax, vmax)


def run_pso(fitness: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, generations: int, particles: int = 20,
            spread: float = 0.05, vmax: float = 0.01, c1: float = 2.0, c2: float = 2.0, seed: int = 0,
            layer: int = 1, clock: ElapsedClock | None = None, log_every: int | None = None, verbose: bool = True,
            checkpoint: Path | None = None, on_generation: GenerationHook | None = None,
            row: dict | None = None) -> RunResult:
    """Particle swarm optimisation (``deap`` particles and toolbox) maximising ``fitness`` from ``x0``.

    The paper's update rule (:func:`pso_velocity`), per dimension with fresh uniform random numbers::

        v <- v + c1 * U(0,1) * (pbest - x) + c2 * U(0,1) * (gbest - x);   v clamped to [-vmax, vmax]
        x <- x + v

    (no inertia weight; the velocity clamp is what keeps the swarm bounded, as in Kennedy &
    Eberhart's original). Particle 0 starts at ``x0``, the others uniformly within ``+-spread`` of
    it; speeds start uniform in ``+-vmax``. Generation 0 evaluates the initial swarm; the whole
    swarm is evaluated in one batched call per generation. ``checkpoint``: as :func:`run_cma`.
    """
    from deap import base

    creator = _pso_creator()
    rng = np.random.default_rng(seed)
    x0 = np.asarray(x0, np.float64)
    D = len(x0)

    def generate():
        part = creator.KnnParticle(x0 + rng.uniform(-spread, spread, D))
        part.speed = rng.uniform(-vmax, vmax, D)
        return part

    def update(part, gbest):
        u1, u2 = rng.uniform(0, 1, D), rng.uniform(0, 1, D)
        part.speed = pso_velocity(part.speed, np.asarray(part), np.asarray(part.best), np.asarray(gbest),
                                  u1, u2, c1, c2, vmax)
        part[:] = part + part.speed

    toolbox = base.Toolbox()
    toolbox.register("particle", generate)
    toolbox.register("population", lambda n: [toolbox.particle() for _ in range(n)])
    toolbox.register("update", update)

    swarm = toolbox.population(particles)
    swarm[0][:] = x0
    record = GenerationLog(checkpoint, dict(method="pso", dim=D, x0=digest(x0), particles=particles,
                                            spread=float(spread), vmax=float(vmax), c1=float(c1), c2=float(c2),
                                            seed=seed))
    log = GenerationLogger("PSO", layer, generations, clock or ElapsedClock(), log_every, verbose, record)
    gbest, gbest_fit, evals, start_fit = None, -np.inf, 0, np.nan
    for gen in range(0, generations + 1):
        if gen > 0:
            for part in swarm:
                toolbox.update(part, gbest)
        xs = np.stack([np.asarray(p) for p in swarm])
        fits = log.fitness(gen, xs, fitness)
        evals += len(swarm)
        if gen == 0:
            start_fit = float(fits[0])  # particle 0 is x0
        for part, f in zip(swarm, fits):
            part.fitness.values = (float(f),)
            if part.best is None or part.best.fitness.values[0] < f:
                part.best = creator.KnnParticle(np.array(part))
                part.best.fitness.values = (float(f),)
            if f > gbest_fit:
                gbest, gbest_fit = creator.KnnParticle(np.array(part)), float(f)
        log.log(gen, xs, fits, evals, **(row or {}))
        if on_generation is not None:
            on_generation(layer, gen, {
                "x": xs.copy(), "v": np.stack([p.speed for p in swarm]), "fitness": fits.copy(),
                "pbest": np.stack([np.asarray(p.best) for p in swarm]),
                "pbest_fitness": np.array([p.best.fitness.values[0] for p in swarm]),
                "gbest": np.asarray(gbest).copy(), "gbest_fitness": gbest_fit})
    return RunResult(np.asarray(gbest).copy(), gbest_fit, log.rows, len(log.rows) if log.resumed_at is None else log.resumed_at, start_fit)


@dataclass
class SerialResult:
    """A serial (layer after layer) optimisation: final layers, history (one row per generation)."""

    method: str
    conv: list[Layer]
    history: pd.DataFrame
    seconds: float
    fitness: list[float]  # best fitness after each layer
    resumed_at: list[int] = field(default_factory=list)  # per layer: first generation evaluated here
    fitness_start: float = float("nan")  # the fitness of the start (conv0) itself


def filter_indices(shape: tuple[int, int, int, int], j: int) -> np.ndarray:
    """Positions of filter ``j``'s weights and bias in a layer's genome (:func:`flatten_layer`):
    ``kh * kw * cin + 1`` of them."""
    n_kern = int(np.prod(shape))
    return np.concatenate([np.arange(n_kern).reshape(-1, shape[-1])[:, j], [n_kern + j]])


def one_filter(fitness: Callable[[np.ndarray], np.ndarray], layer_genome: np.ndarray, idx: np.ndarray):
    """``fitness`` of a whole layer as a fitness of one filter: each candidate ``(P, len(idx))`` is
    written into a copy of ``layer_genome`` at ``idx``, the other filters held fixed."""
    def f(cands):
        cands = np.atleast_2d(cands)
        full = np.repeat(np.asarray(layer_genome)[None], len(cands), axis=0)
        full[:, idx] = cands
        return fitness(full)
    return f


def optimise_serial(method: str, conv0: Sequence[Layer], x_ref, y_ref, x_val, y_val, *, generations: int,
                    popsize: int = 16, k: int = 9, seed: int = 0, sigma: float = 0.5, pso_spread: float = 0.5,
                    pso_vmax: float = 0.1, c1: float = 2.0, c2: float = 2.0, pop_chunk: int = 8,
                    image_batch: int = 500, log_every: int | None = None, verbose: bool = True,
                    label: str | None = None, checkpoint_dir: str | Path | None = None,
                    on_generation: GenerationHook | None = None, search: str = "layer",
                    score: str = "accuracy") -> SerialResult:
    """Optimise the conv layers one after the other (layer 1 first, then layer 2 with layer 1 fixed).

    ``method``: ``"cma"`` or ``"pso"``. ``search``: ``"layer"``, one search over a whole layer's
    kernels and biases (separable CMA-ES above 1000 dimensions), or ``"filter"``, the paper's
    "optimised individually, one at a time": one small search per filter in turn (its
    ``kh * kw * cin`` weights and bias, 10 for a conv-1 filter, 289 for a conv-2 filter; full-covariance
    CMA-ES), the layer's other filters fixed, ``generations`` per filter. ``conv0``: the start
    (random init, or the backprop weights for fine-tuning). Step sizes are relative to each layer's
    Glorot scale (:func:`glorot_std`): CMA-ES ``sigma0 = sigma * scale`` (a step of about half a
    weight's own size for ``sigma = 0.5``: large enough to change the features, small enough to stay
    on their scale); PSO spread ``pso_spread * scale`` and velocity clamp ``pso_vmax * scale``.
    ``score``: the fitness (:data:`imgclf.models.knn.FITNESS_SCORES`). The history has one row per
    generation (method, layer, filter for the per-filter search, generation, evaluations, best,
    mean, best_so_far, elapsed seconds since the start).

    ``checkpoint_dir`` (a run unit's ``checkpoint``): every generation of every search is recorded
    there (:class:`imgclf.runs.GenerationLog`); run again after an interruption, the optimisation
    resumes after the last recorded generation and ends with the same kernels, fitness and history
    (bar the elapsed times). ``on_generation``: see :data:`imgclf.runs.GenerationHook`.
    """
    if method not in ("cma", "pso"):
        raise ValueError(f"method must be 'cma' or 'pso', got {method!r}")
    if search not in ("layer", "filter"):
        raise ValueError(f"search must be 'layer' or 'filter', got {search!r}")
    name = label or METHOD[method]
    conv = [(np.array(a), np.array(b)) for a, b in conv0]
    ckpt = None if checkpoint_dir is None else Path(checkpoint_dir)
    rows, fits, resumed, start_fit = [], [], [], None
    clock = ElapsedClock()
    for li in range(len(conv)):
        ev = PopulationFitness(conv, li, x_ref, y_ref, x_val, y_val, k=k, pop_chunk=pop_chunk,
                               image_batch=image_batch, score=score)
        genome, best_fit, replayed, layer_start, history = search_layer(
            method, ev, flatten_layer(conv[li]), conv[li][0].shape, search=search, generations=generations,
            popsize=popsize, sigma0=sigma * glorot_std(conv[li]), pso_spread=pso_spread * glorot_std(conv[li]),
            pso_vmax=pso_vmax * glorot_std(conv[li]), c1=c1, c2=c2, seed=seed + li, layer=li + 1, clock=clock,
            log_every=log_every, verbose=verbose, checkpoint_dir=ckpt, on_generation=on_generation)
        for r in history:
            r["method"] = name
        rows += history
        conv[li] = ev.decode(genome)
        fits.append(best_fit)
        resumed.append(replayed)
        start_fit = layer_start if start_fit is None else start_fit
    seconds = max((r["elapsed"] for r in rows), default=0.0)
    return SerialResult(name, conv, pd.DataFrame(rows), seconds, fits, resumed, start_fit)


def search_layer(method: str, fitness: Callable[[np.ndarray], np.ndarray], genome: np.ndarray,
                 shape: tuple[int, int, int, int], *, search: str, generations: int, popsize: int, sigma0: float,
                 pso_spread: float, pso_vmax: float, c1: float = 2.0, c2: float = 2.0, seed: int = 0, layer: int = 1,
                 clock: ElapsedClock | None = None, log_every: int | None = None, verbose: bool = True,
                 checkpoint_dir: Path | None = None, on_generation: GenerationHook | None = None):
    """One layer's search (:func:`optimise_serial`): ``fitness`` maps layer genomes ``(P, D)`` to
    ``(P,)``, ``genome`` is the start, ``shape`` the kernel's. ``search="layer"``: one CMA-ES/PSO
    over the whole genome; ``"filter"``: one per filter in turn (:func:`filter_indices`), each from
    the genome the previous ones left. Returns ``(genome, best fitness, generations replayed from
    the checkpoint, fitness of the start, history rows)``."""
    clock = clock or ElapsedClock()

    def run(f, x0, seed_, path, row):
        common = dict(seed=seed_, layer=layer, clock=clock, log_every=log_every, verbose=verbose,
                      checkpoint=path, on_generation=on_generation, row=row)
        if method == "cma":
            return run_cma(f, x0, sigma0, generations, popsize=popsize, **common)
        return run_pso(f, x0, generations, particles=popsize, spread=pso_spread, vmax=pso_vmax, c1=c1, c2=c2, **common)

    genome = np.asarray(genome, np.float64)
    if search == "layer":
        res = run(fitness, genome, seed, None if checkpoint_dir is None else checkpoint_dir / f"layer{layer}.json", None)
        return res.best, res.best_fitness, res.resumed_at, res.start_fitness, res.history
    replayed, start, rows = 0, None, []
    for j in range(shape[-1]):
        idx = filter_indices(shape, j)
        path = None if checkpoint_dir is None else checkpoint_dir / f"layer{layer}_filter{j}.json"
        res = run(one_filter(fitness, genome, idx), genome[idx], seed * 1000 + j, path, {"filter": j})
        genome = genome.copy()
        genome[idx] = res.best  # the best seen, the start included: a filter is never made worse
        replayed += res.resumed_at
        start = res.start_fitness if start is None else start
        rows += res.history
    return genome, res.best_fitness, replayed, start, rows


def conv_arrays(conv: Sequence[Layer]) -> dict[str, np.ndarray]:
    """``{"kernel0", "bias0", "kernel1", ...}`` for :meth:`imgclf.runs.Unit.save_arrays`."""
    return {f"{n}{i}": a for i, layer in enumerate(conv) for n, a in zip(("kernel", "bias"), layer)}


def conv_from_arrays(arrays: dict[str, np.ndarray]) -> list[Layer]:
    n = sum(1 for k in arrays if k.startswith("kernel"))
    return [(arrays[f"kernel{i}"], arrays[f"bias{i}"]) for i in range(n)]


# How a unit reports its progress changes nothing it computes, so it is not an argument of the unit
# (it would be part of its key): :func:`evolve` sets it here for the unit it runs.
_OBSERVE: dict = {"on_generation": None, "verbose": True}


def evolution(cfg: Config, method: str, start: str, conv0: Sequence[Layer], fit_data, eval_data, seed: int,
              search: str = "layer") -> dict:
    """Run unit: one serial evolution (:func:`optimise_serial`, ``search`` per layer or per filter,
    the fitness ``cfg.fitness``), resumable per generation, its kernels kept in the unit
    (``kernels.npz``).

    ``start``: ``"random"`` or ``"backprop"`` (picks ``random_generations``/``sigma_random``/
    ``pso_spread_random`` or their fine-tuning values); ``fit_data``: ``(x_ref, y_ref, x_val,
    y_val)`` of the fitness; ``eval_data``: ``(x_train, y_train, x_test, y_test)`` of the setting.
    Returns the method, seed, fitness at the start and after each layer, the history (one record
    per generation), the seconds, ``test_accuracy`` (k-NN with the setting's training images as
    reference set, on its test images) and ``fitness_ref_test_accuracy`` (k-NN with the fitness'
    reference images, on the same test images)."""
    rand = start == "random"
    hook_user = _OBSERVE["on_generation"]

    def hook(layer, gen, state):
        if hook_user is not None:
            hook_user(layer, gen, state)
        check_budget()  # the generation is recorded: a spent budget stops here, resumed next run

    unit = current()
    gens = cfg.filter_generations if search == "filter" else cfg.random_generations if rand else cfg.generations
    r = optimise_serial(method, conv0, *fit_data, generations=gens, search=search, score=cfg.fitness,
                        popsize=cfg.popsize, k=cfg.k, seed=seed,
                        sigma=cfg.sigma_random if rand else cfg.sigma_finetune,
                        pso_spread=cfg.pso_spread_random if rand else cfg.pso_spread_finetune,
                        pso_vmax=cfg.pso_vmax, c1=cfg.pso_c1, c2=cfg.pso_c2, pop_chunk=cfg.pop_chunk,
                        image_batch=cfg.image_batch, checkpoint_dir=unit.checkpoint if unit else None,
                        on_generation=hook, verbose=_OBSERVE["verbose"])
    if unit is not None:
        unit.save_arrays("kernels.npz", **conv_arrays(r.conv))
    x_tr, y_tr, x_te, y_te = eval_data
    return dict(method=r.method, start=start, search=search, seed=seed, fitness_start=r.fitness_start,
                fitness_per_layer=r.fitness, fitness_end=r.fitness[-1], seconds=r.seconds,
                resumed_at=r.resumed_at, history=r.history.to_dict("records"),
                # how far evolution moved each layer (0: the start kept), relative to the start's norm
                kernel_change=[float(np.linalg.norm(flatten_layer(a) - flatten_layer(b)) / np.linalg.norm(flatten_layer(b)))
                               for a, b in zip(r.conv, conv0)],
                test_accuracy=knn_accuracy(r.conv, x_tr, y_tr, x_te, y_te, cfg.k),
                fitness_ref_test_accuracy=knn_accuracy(r.conv, fit_data[0], fit_data[1], x_te, y_te, cfg.k))


def evolve(runs, cfg: Config, method: str, start: str, conv0: Sequence[Layer], fit_data, eval_data, seed: int,
           *, label: str, search: str = "layer", on_generation: GenerationHook | None = None,
           verbose: bool = True) -> tuple[dict | None, list[Layer] | None]:
    """:func:`evolution` through ``runs`` and its evolved kernels, loaded from its unit.
    ``label`` names the data (e.g. ``"500 train images"``): two Table 2 columns with the same
    training images share one unit. ``(None, None)`` when the budget is spent."""
    name = f"{dict(cma='CMA-ES', pso='PSO')[method]} {'random start' if start == 'random' else 'fine-tune'} " \
           f"per {search} seed {seed} [{label}]"
    kw = dict(cfg=cfg, method=method, start=start, conv0=[tuple(layer) for layer in conv0], fit_data=tuple(fit_data),
              eval_data=tuple(eval_data), seed=seed, search=search)
    _OBSERVE.update(on_generation=on_generation, verbose=verbose)
    try:
        res = runs.cached(evolution, name=name, **kw)
    finally:
        _OBSERVE.update(on_generation=None, verbose=True)
    if res is None:
        return None, None
    return res, conv_from_arrays(_finished(runs, evolution, name, kw).load_arrays("kernels.npz"))


# ------------------------------------------------------------------------------------------
# 5. Table 2: test accuracies beside the paper's, with the controls
# ------------------------------------------------------------------------------------------
METHOD = {"cma": "CMA-ES", "pso": "PSO"}
ROW_RAW = "control: k-NN on raw pixels"
ROW_RANDOM_KERNELS = "control: k-NN on random kernels (no evolution, no backprop)"
ROW_BACKPROP_KERNELS = "k-NN on backprop kernels (no evolution)"


def row_random(method: str, search: str) -> str:
    """Table 2's row of an evolution from a random start (the paper's evolved rows)."""
    return f"k-NN {METHOD[method]} (random start, per-{search} search)"


def row_finetune(method: str, search: str) -> str:
    return f"k-NN {METHOD[method]} (fine-tuned from backprop, per-{search} search)"


def paper_row(row: str) -> str:
    """The paper's row a row of ours is compared with: evolution replaces backprop, so the paper's
    evolved rows are our random-start rows (its CNN rows keep their names)."""
    for m in METHOD.values():
        if row.startswith(f"k-NN {m} (random start"):
            return f"k-NN {m}"
    return row


def is_evolved(row: str) -> bool:
    return row.startswith(tuple(f"k-NN {m} (" for m in METHOD.values()))


def table2(cells: dict[tuple[str, str], list[float]], columns: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``cells[(row, column)]``: the test accuracies (fractions) of that cell, one per seed.
    Returns ``(mean %, sd %, n)`` frames (rows in insertion order; a missing cell is NaN / 0)."""
    rows = list(dict.fromkeys(r for r, _ in cells))
    mean = pd.DataFrame(np.nan, index=pd.Index(rows, name="model"), columns=list(columns))
    sd, n = mean.copy(), pd.DataFrame(0, index=mean.index, columns=mean.columns)
    for (r, c), vals in cells.items():
        vals = [v for v in vals if v is not None]
        if vals:
            mean.loc[r, c] = 100 * np.mean(vals)
            sd.loc[r, c] = 100 * np.std(vals, ddof=1) if len(vals) > 1 else np.nan
            n.loc[r, c] = len(vals)
    return mean, sd, n


def table2_display(paper: pd.DataFrame, mean: pd.DataFrame, sd: pd.DataFrame, n: pd.DataFrame,
                   columns: dict[str, str]) -> pd.DataFrame:
    """Paper beside ours per column; ours as ``mean ± sd (n seeds)`` where there are several seeds.
    ``columns``: our column (the setting as run) -> the paper's column (:func:`paper_columns`)."""
    def fmt(m, s, k):
        if k == 0 or np.isnan(m):
            return "not run"
        return f"{m:.2f} ± {s:.2f} ({k} seeds)" if k > 1 else f"{m:.2f}"

    out = {}
    for c in mean.columns:
        pc = columns[c]
        pap = [paper.loc[paper_row(r), pc] if paper_row(r) in paper.index else np.nan for r in mean.index]
        out[(f"paper: {pc}", "paper")] = ["" if np.isnan(p) else f"{p:g}" for p in pap]
        out[(f"ours: {c}", "ours")] = [fmt(mean.loc[r, c], sd.loc[r, c], n.loc[r, c]) for r in mean.index]
    return pd.DataFrame(out, index=mean.index)


def table2_long(paper: pd.DataFrame, mean: pd.DataFrame, sd: pd.DataFrame, n: pd.DataFrame,
                columns: dict[str, str]) -> pd.DataFrame:
    """Table 2 as one record per (model, column as run), for results.json: the paper's column it
    stands for and the paper's number there (where it has one), ours (mean over seeds), its sd and
    the number of seeds; every evolved row also carries the two controls of its column and its gap
    above the random-kernel control."""
    recs = []
    for r in mean.index:
        for c in mean.columns:
            pr = paper_row(r)
            rec = dict(model=r, setting=c, paper_setting=columns[c],
                       paper=paper.loc[pr, columns[c]] if pr in paper.index else None,
                       ours=mean.loc[r, c], ours_sd=sd.loc[r, c], seeds=int(n.loc[r, c]))
            if is_evolved(r):
                raw = mean.loc[ROW_RAW, c] if ROW_RAW in mean.index else np.nan
                rk = mean.loc[ROW_RANDOM_KERNELS, c] if ROW_RANDOM_KERNELS in mean.index else np.nan
                rec.update({"control: raw pixels": raw, "control: random kernels": rk,
                            "ours - random kernels": rec["ours"] - rk})
            recs.append(rec)
    df = pd.DataFrame(recs).set_index(["model", "setting"])
    df["ours - paper"] = df["ours"] - pd.to_numeric(df["paper"])
    return df.round(2)


def fitness_rise(results: dict[str, dict]) -> pd.DataFrame:
    """Per evolution: best fitness at generation 0 (the start's own fitness), after layer 1, at the
    end, and the rise (end - start)."""
    return pd.DataFrame({name: {"fitness at start": r["fitness_start"], "after layer 1": r["fitness_per_layer"][0],
                                "at the end": r["fitness_end"], "rise": r["fitness_end"] - r["fitness_start"]}
                         for name, r in results.items() if r is not None}).T.rename_axis("run")


# ------------------------------------------------------------------------------------------
# 6. The inference engine: stored sizes
# ------------------------------------------------------------------------------------------
KERNELS_RAW = "sliced: kernels only (raw float32 bytes)"


def stored_sizes(full_model: keras.Model, conv: Sequence[Layer], x_ref, y_ref) -> pd.DataFrame:
    """Bytes on disk of the inference engines, each written to a temporary file and measured.

    Rows: the full CNN (``.keras`` model and weights-only ``.weights.h5``, no optimizer state), the sliced
    network's kernels only (their raw float32 bytes, the paper's measure; the ``.weights.h5`` of the
    sliced model; a ``.npz``), and kernels
    plus the k-NN reference set, stored either as the reference *images* (uint8, features are
    recomputed at load) or as the reference *features* (float32, what the k-NN actually searches).
    """
    sliced = sliced_model(conv, x_ref.shape[1:])
    full_model = inference_copy(full_model)
    kern = {f"k{i}": a for i, (a, b) in enumerate(conv)} | {f"b{i}": b for i, (a, b) in enumerate(conv)}

    def npz(path, **arrays):
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    imgs = np.clip(np.rint(np.asarray(x_ref) * 255), 0, 255).astype(np.uint8)
    labels = np.asarray(y_ref).astype(np.uint8)
    feats = sliced.predict(x_ref, batch_size=256, verbose=0).astype(np.float32)
    n_params = sum(a.size + b.size for a, b in conv)
    rows = {
        "full CNN (.keras)": (full_model.count_params(), saved_bytes(full_model.save, ".keras")),
        "full CNN weights (.weights.h5)": (full_model.count_params(), saved_bytes(full_model.save_weights, ".weights.h5")),
        # the paper's 74 KB is the kernels' own bytes (18,816 float32 = 73.5 KiB): the like-for-like row
        KERNELS_RAW: (n_params, int(sum(a.nbytes + b.nbytes for a, b in conv))),
        "sliced: kernels only (.weights.h5)": (n_params, saved_bytes(sliced.save_weights, ".weights.h5")),
        "sliced: kernels only (.npz)": (n_params, saved_bytes(lambda p: npz(p, **kern), ".npz")),
        "sliced: kernels + reference images uint8 (.npz)": (
            n_params, saved_bytes(lambda p: npz(p, **kern, images=imgs, labels=labels), ".npz")),
        "sliced: kernels + reference features float32 (.npz)": (
            n_params, saved_bytes(lambda p: npz(p, **kern, features=feats, labels=labels), ".npz")),
    }
    df = pd.DataFrame(rows, index=["parameters", "bytes"]).T
    df["KiB"] = (df["bytes"] / 1024).round(1)
    df.index.name = "inference engine"
    return df
