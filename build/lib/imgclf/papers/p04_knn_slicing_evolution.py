"""k-NN slicing (paper 4): a k-NN head on conv features, and conv kernels optimised by evolution.

The network is the classic Keras MNIST CNN (:func:`build_mnist_cnn`): two 3x3 ReLU conv layers
(32 and 64 kernels, 18,816 parameters with biases), a 2x2 max-pool, then the dense head. *Slicing*
cuts the head off and classifies the pooled conv activations (12x12x64 = 9,216 values per image)
with an exact Euclidean k-NN (:class:`KNNHead`) whose reference set is the training images.

The conv kernels are then optimised *serially* without gradients (:func:`optimise_serial`): first
layer 1's kernels and biases with layer 2 held fixed, then layer 2's with the new layer 1 fixed,
by CMA-ES (:func:`run_cma`, the ``cma`` package) or PSO (:func:`run_pso`, ``deap``). The fitness of
a candidate is the k-NN accuracy on a held-out part of the training images.

The fitness of a whole population is computed in one batched TensorFlow pass per chunk of
candidates (:class:`PopulationFitness`): the candidates' kernels of the optimised layer are stacked
along the output-channel axis of one convolution (the input is shared), the population is then
folded into the batch axis for the fixed layers after it, and the k-NN is a batched matrix product
(squared distances) followed by ``top_k`` and a vote. :func:`fitness_per_individual` is the
straightforward reference (Keras ``predict`` + scikit-learn ``KNeighborsClassifier``) that the
batched evaluator must agree with. TensorFloat-32 is turned off wherever distances are computed
(:func:`exact_float32`), so that a GPU gives the CPU's fitness.

Each backprop training (:func:`backprop_unit`) and each evolution (:func:`evolution_unit`) is a run
unit (:mod:`imgclf.runs`): stored, reused, budgeted; an evolution records every generation in its
unit's checkpoint (:class:`GenerationLog`) and resumes after the last one with the same results.
Table 2 (:func:`table2`, :func:`table2_long`) puts two controls beside every evolved row: the k-NN on
raw pixels (:func:`knn_raw_pixels`) and on the random initial kernels.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from .. import config, train
from ..models import saved_bytes
from ..runs import check_budget
from ..models.cnns import build_mnist_cnn
from ..models.knn import (  # noqa: F401 (re-exported for notebook 04)
    KNNHead,
    Layer,
    _knn_vote,
    conv_layers,
    exact_float32,
    random_conv_layers,
    set_conv_weights,
    sliced_model,
)


def glorot_std(layer: Layer) -> float:
    """Standard deviation of a Glorot-uniform kernel of this layer's shape (the scale of steps)."""
    kh, kw, cin, cout = layer[0].shape
    return float(np.sqrt(2.0 / (kh * kw * (cin + cout))))


def flatten_layer(layer: Layer) -> np.ndarray:
    """One layer's kernel and bias as one genome vector (kernel first, C order)."""
    return np.concatenate([layer[0].ravel(), layer[1].ravel()]).astype(np.float64)


def unflatten_layer(genome: np.ndarray, shape: tuple[int, int, int, int]) -> Layer:
    """Inverse of :func:`flatten_layer` for a kernel of ``shape``."""
    n = int(np.prod(shape))
    genome = np.asarray(genome)
    if genome.shape != (n + shape[-1],):
        raise ValueError(f"genome of length {genome.shape}, expected {n + shape[-1]} for kernel {shape}")
    return genome[:n].reshape(shape).astype(np.float32), genome[n:].astype(np.float32)



# ------------------------------------------------------------------------------------------
def fitness_per_individual(
    conv: Sequence[Layer], layer_index: int, genome: np.ndarray, x_ref, y_ref, x_val, y_val, k: int = 9,
    model: keras.Model | None = None,
) -> float:
    """The straightforward fitness of one candidate: set its kernels into a Keras model, predict
    the features, fit scikit-learn's k-NN on the reference images and score it on the others."""
    from sklearn.neighbors import KNeighborsClassifier

    exact_float32()
    conv = list(conv)
    conv[layer_index] = unflatten_layer(genome, conv[layer_index][0].shape)
    if model is None:
        model = sliced_model(conv, x_ref.shape[1:])
    else:
        set_conv_weights(model, conv)
    f_ref = model.predict(x_ref, batch_size=256, verbose=0)
    f_val = model.predict(x_val, batch_size=256, verbose=0)
    knn = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(f_ref, y_ref)
    return float(knn.score(f_val, y_val))


class PopulationFitness:
    """k-NN accuracy of many candidates for one conv layer, in one batched TF pass per chunk.

    ``conv``: the current layers (the others stay fixed); ``layer_index``: the layer optimised.
    Reference images ``x_ref (n, 28, 28, 1)`` with labels, validation images ``x_val`` with labels:
    the fitness is the accuracy of the k-NN (reference set = ``x_ref``'s features) on ``x_val``.
    Calling it with genomes ``(P, D)`` (``D`` = the layer's kernel + bias size) returns ``(P,)``
    accuracies. TensorFloat-32 is turned off (:func:`exact_float32`). ``pop_chunk`` candidates go through the network together (the last chunk is
    padded, so a single graph serves every call), ``image_batch`` images at a time.
    The layers before the optimised one are applied once, here, and cached.
    """

    def __init__(self, conv: Sequence[Layer], layer_index: int, x_ref, y_ref, x_val, y_val, k: int = 9,
                 pop_chunk: int = 8, image_batch: int = 500, dtype: str = "float32"):
        import tensorflow as tf

        exact_float32()  # TF32 on a GPU would move the distances, so the fitness (issue 12)
        self.conv = [(np.asarray(a, np.float32), np.asarray(b, np.float32)) for a, b in conv]
        self.layer_index, self.k, self.pop_chunk, self.image_batch = layer_index, int(k), int(pop_chunk), int(image_batch)
        self.shape = self.conv[layer_index][0].shape
        self.dim = int(np.prod(self.shape) + self.shape[-1])
        self.dtype = dtype
        self.n_ref = len(x_ref)
        self.classes_, codes = np.unique(np.concatenate([np.asarray(y_ref), np.asarray(y_val)]), return_inverse=True)
        self._codes_ref = tf.constant(codes[: self.n_ref].astype(np.int32))
        self._codes_val = tf.constant(codes[self.n_ref :].astype(np.int32))
        x = np.concatenate([x_ref, x_val]).astype(np.float32)
        # the fixed prefix (layers before the optimised one), computed once
        h = tf.constant(x)
        for kern, bias in self.conv[:layer_index]:
            h = tf.nn.relu(tf.nn.conv2d(h, kern, 1, "VALID") + bias)
        self._inputs = h
        self._suffix = [(tf.constant(a), tf.constant(b)) for a, b in self.conv[layer_index + 1 :]]
        self._features = tf.function(self._features_fn, reduce_retracing=True)
        self._vote = tf.function(self._vote_fn, reduce_retracing=True)
        self.evaluations = 0

    def decode(self, genome) -> Layer:
        return unflatten_layer(np.asarray(genome), self.shape)

    def _features_fn(self, h, kernels, biases):
        """``h (n, H, W, cin)``, kernels ``(P, kh, kw, cin, cout)`` -> features ``(P, n, F)``."""
        import tensorflow as tf

        P = tf.shape(kernels)[0]
        kh, kw, cin, cout = self.shape
        stacked = tf.reshape(tf.transpose(kernels, [1, 2, 3, 0, 4]), [kh, kw, cin, -1])  # one conv, P*cout maps
        y = tf.nn.relu(tf.nn.conv2d(h, stacked, 1, "VALID") + tf.reshape(biases, [-1]))
        n, H, W = tf.shape(y)[0], tf.shape(y)[1], tf.shape(y)[2]
        y = tf.reshape(y, [n, H, W, P, cout])
        y = tf.reshape(tf.transpose(y, [3, 0, 1, 2, 4]), [P * n, H, W, cout])  # population -> batch
        for kern, bias in self._suffix:
            y = tf.nn.relu(tf.nn.conv2d(y, kern, 1, "VALID") + bias)
        y = tf.nn.max_pool2d(y, 2, 2, "VALID")
        return tf.reshape(y, [P, n, -1])

    def _vote_fn(self, feats):
        import tensorflow as tf

        feats = tf.cast(feats, self.dtype)
        ref, val = feats[:, : self.n_ref], feats[:, self.n_ref :]
        ref_sq = tf.reduce_sum(tf.square(ref), axis=-1)
        pred = _knn_vote(val, ref, ref_sq, self._codes_ref, self.k, len(self.classes_))
        return tf.reduce_mean(tf.cast(tf.equal(pred, self._codes_val[None, :]), tf.float64), axis=-1)

    def __call__(self, genomes) -> np.ndarray:
        import tensorflow as tf

        genomes = np.atleast_2d(np.asarray(genomes, np.float32))
        if genomes.shape[1] != self.dim:
            raise ValueError(f"genomes of length {genomes.shape[1]}, expected {self.dim}")
        n_kern = self.dim - self.shape[-1]
        out = []
        for s in range(0, len(genomes), self.pop_chunk):
            g = genomes[s : s + self.pop_chunk]
            real = len(g)
            if real < self.pop_chunk:  # pad: one traced graph for every chunk
                g = np.concatenate([g, np.repeat(g[-1:], self.pop_chunk - real, axis=0)])
            kernels = tf.constant(g[:, :n_kern].reshape(len(g), *self.shape))
            biases = tf.constant(g[:, n_kern:])
            feats = tf.concat(
                [self._features(self._inputs[i : i + self.image_batch], kernels, biases)
                 for i in range(0, int(self._inputs.shape[0]), self.image_batch)], axis=1)
            out.append(self._vote(feats).numpy()[:real])
        self.evaluations += len(genomes)
        return np.concatenate(out)


# ------------------------------------------------------------------------------------------
# Optimisers, resumable: every generation is recorded in our own checkpoint files
# ------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    """One optimiser run on one layer: the best genome found, its fitness and the history."""

    best: np.ndarray
    best_fitness: float
    history: list[dict] = field(default_factory=list)
    resumed_at: int = 0  # the first generation evaluated in this process (0: not resumed; all replayed: generations + 1)
    start_fitness: float = float("nan")  # the fitness of x0 itself


GenerationHook = Callable[[int, int, dict], None]
"""``on_generation(layer, generation, state)``: called after each generation is recorded (and
checkpointed). ``state``: CMA-ES ``{"es", "candidates", "fitness"}``; PSO ``{"x", "v", "pbest",
"pbest_fitness", "gbest", "gbest_fitness", "fitness"}`` (copies, after the bests' update). An
exception raised here stops the run as a kill would; the checkpoint holds every generation so far."""


def _digest(a: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(a, np.float64).tobytes()).hexdigest()[:16]


class _Clock:
    """Seconds since a run's start, continued across a resume (the stored elapsed time + this process')."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def continue_from(self, elapsed: float) -> None:
        self.t0 = time.perf_counter() - elapsed


class GenerationLog:
    """The checkpoint of one layer's optimiser run: per generation its fitness values, a digest of
    its candidates and its history row, in ``<checkpoint>/layer<L>.json``, rewritten atomically
    after every generation (JSON floats round-trip exactly; nothing is pickled).

    Resume is a *replay*: the optimiser is rebuilt from its seed and asked again for each recorded
    generation, told the recorded fitness (no network is evaluated), which reproduces its state
    (CMA-ES's mean, step size, covariance and random stream; PSO's swarm and random stream)
    exactly; the digest checks that the replayed candidates are the recorded ones. Evaluation
    goes on from the first generation not recorded. ``path=None``: nothing is stored.
    """

    def __init__(self, path: Path | None, settings: dict):
        self.path, self.settings = path, settings
        self.records: list[dict] = []
        if path is not None and path.is_file():
            stored = json.loads(path.read_text())
            if stored.get("settings") != settings:
                raise RuntimeError(f"checkpoint {path} was written with other settings: {stored.get('settings')} "
                                   f"!= {settings}; delete it to start over")
            self.records = stored["generations"]

    def __len__(self) -> int:
        return len(self.records)

    def replay(self, gen: int, candidates: np.ndarray) -> np.ndarray | None:
        """The recorded fitness of generation ``gen`` (checking its candidates), or ``None``."""
        if gen >= len(self.records):
            return None
        rec = self.records[gen]
        if rec["digest"] != _digest(candidates):
            raise RuntimeError(f"checkpoint {self.path}: generation {gen}'s candidates differ from the recorded "
                               "ones (the optimiser, its seed or its start changed); delete it to start over")
        return np.asarray(rec["fitness"], np.float64)

    def row(self, gen: int) -> dict:
        return dict(self.records[gen]["row"])

    def add(self, candidates: np.ndarray, fits: np.ndarray, row: dict) -> None:
        self.records.append({"fitness": [float(f) for f in fits], "digest": _digest(candidates), "row": row})
        if self.path is not None:
            from ..reports import atomic_write_text

            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps({"settings": self.settings, "generations": self.records}))


class _Logger:
    """Records one history row per generation and prints a progress line every ``every``."""

    def __init__(self, method: str, layer: int, generations: int, clock: _Clock, every: int | None, verbose: bool,
                 record: GenerationLog):
        self.method, self.layer, self.generations, self.clock, self.verbose = method, layer, generations, clock, verbose
        self.every = every or max(1, generations // 10)
        self.record = record
        self.rows: list[dict] = []
        self.best_so_far = -np.inf
        self.resumed_at: int | None = None

    def fitness(self, gen: int, candidates: np.ndarray, evaluate: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Generation ``gen``'s fitness: recorded (replay) or evaluated now."""
        fits = self.record.replay(gen, candidates)
        if fits is not None:
            return fits
        if self.resumed_at is None:
            self.resumed_at = gen
            if gen > 0:
                self.clock.continue_from(self.rows[-1]["elapsed"])
                if self.verbose:
                    print(f"{self.method} layer {self.layer}: resumed from the checkpoint at generation {gen}",
                          file=sys.stdout, flush=True)
        return np.asarray(evaluate(candidates), np.float64)

    def log(self, gen: int, candidates: np.ndarray, fits: np.ndarray, evaluations: int) -> None:
        self.best_so_far = max(self.best_so_far, float(np.max(fits)))
        if gen < len(self.record):
            row = self.record.row(gen)
        else:
            row = dict(method=self.method, layer=self.layer, generation=gen, evaluations=evaluations,
                       best=float(np.max(fits)), mean=float(np.mean(fits)), best_so_far=self.best_so_far,
                       elapsed=self.clock.elapsed())
            self.record.add(candidates, fits, row)
        self.rows.append(row)
        if self.verbose and gen >= len(self.record) - 1 and (gen % self.every == 0 or gen == self.generations):
            print(f"{self.method} layer {self.layer} gen {gen:4d}/{self.generations}  best {row['best']:.4f}  "
                  f"mean {row['mean']:.4f}  best so far {self.best_so_far:.4f}  elapsed {row['elapsed']:7.1f}s",
                  file=sys.stdout, flush=True)


def run_cma(fitness: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, sigma0: float, generations: int,
            popsize: int | None = None, diagonal: bool | None = None, seed: int = 0, layer: int = 1,
            clock: _Clock | None = None, log_every: int | None = None, verbose: bool = True,
            checkpoint: Path | None = None, on_generation: GenerationHook | None = None) -> RunResult:
    """CMA-ES (``cma``) maximising ``fitness`` (a batched function ``(P, D) -> (P,)``) from ``x0``.

    ``diagonal=None`` picks the separable (diagonal-covariance) variant when ``D > 1000``: a full
    covariance at ~18.5k dimensions is a 342M-entry matrix (2.7 GB) whose eigendecomposition costs
    ~10^13 operations, and its learning rate (~2/D^2) is so small that it would not adapt within
    any affordable number of generations; sep-CMA-ES keeps O(D) memory and time and adapts its
    D variances ~D/3 times faster. Generation 0 is the fitness of ``x0``; then ``generations``
    ask/tell rounds. Returns the best candidate seen (not the distribution mean).
    ``checkpoint``: a JSON file (:class:`GenerationLog`) written every generation; a run that
    finds it resumes after its last recorded generation with the same results.
    """
    import cma

    x0 = np.asarray(x0, np.float64)
    diagonal = len(x0) > 1000 if diagonal is None else diagonal
    opts = {"seed": seed + 1, "verbose": -9, "CMA_diagonal": bool(diagonal), "tolflatfitness": generations + 10,
            "tolfun": 0, "tolfunhist": 0, "tolx": 0, "tolstagnation": 10 ** 9}
    if popsize:
        opts["popsize"] = int(popsize)
    record = GenerationLog(checkpoint, dict(method="cma", dim=len(x0), x0=_digest(x0), sigma0=float(sigma0),
                                            popsize=opts.get("popsize"), diagonal=bool(diagonal), seed=seed))
    log = _Logger("CMA-ES", layer, generations, clock or _Clock(), log_every, verbose, record)
    f0 = log.fitness(0, x0[None], fitness)
    best, best_fit, evals = x0.copy(), float(f0[0]), 1
    log.log(0, x0[None], f0, evals)
    es = cma.CMAEvolutionStrategy(x0, sigma0, opts)  # seeds NumPy's global stream, which ask() draws from
    for gen in range(1, generations + 1):
        cands = np.asarray(es.ask())
        fits = log.fitness(gen, cands, fitness)
        evals += len(cands)
        es.tell(list(cands), list(1.0 - fits))  # cma minimises
        i = int(np.argmax(fits))
        if fits[i] > best_fit:
            best, best_fit = cands[i].copy(), float(fits[i])
        log.log(gen, cands, fits, evals)
        if on_generation is not None:
            on_generation(layer, gen, {"es": es, "candidates": cands, "fitness": fits})
    return RunResult(best, best_fit, log.rows, len(log.rows) if log.resumed_at is None else log.resumed_at, float(f0[0]))


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
            layer: int = 1, clock: _Clock | None = None, log_every: int | None = None, verbose: bool = True,
            checkpoint: Path | None = None, on_generation: GenerationHook | None = None) -> RunResult:
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
    record = GenerationLog(checkpoint, dict(method="pso", dim=D, x0=_digest(x0), particles=particles,
                                            spread=float(spread), vmax=float(vmax), c1=float(c1), c2=float(c2),
                                            seed=seed))
    log = _Logger("PSO", layer, generations, clock or _Clock(), log_every, verbose, record)
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
        log.log(gen, xs, fits, evals)
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


def optimise_serial(method: str, conv0: Sequence[Layer], x_ref, y_ref, x_val, y_val, *, generations: int,
                    popsize: int = 16, k: int = 9, seed: int = 0, sigma: float = 0.5, pso_spread: float = 0.5,
                    pso_vmax: float = 0.1, c1: float = 2.0, c2: float = 2.0, pop_chunk: int = 8,
                    image_batch: int = 500, log_every: int | None = None, verbose: bool = True,
                    label: str | None = None, checkpoint_dir: str | Path | None = None,
                    on_generation: GenerationHook | None = None) -> SerialResult:
    """Optimise the conv layers one after the other (layer 1 first, then layer 2 with layer 1 fixed).

    ``method``: ``"cma"`` or ``"pso"``. ``conv0``: the start (random init for a random start, the
    backprop weights for fine-tuning). Step sizes are relative to each layer's Glorot scale
    (:func:`glorot_std`): CMA-ES ``sigma0 = sigma * scale``; PSO spread ``pso_spread * scale`` and
    velocity clamp ``pso_vmax * scale``. ``generations`` per layer, ``popsize`` candidates
    (particles) per generation. The history has one row per generation (method, layer,
    generation, evaluations, best, mean, best_so_far, elapsed seconds since the start).

    ``checkpoint_dir`` (a run unit's ``checkpoint``): every generation of every layer is recorded
    there (:class:`GenerationLog`); run again after an interruption, the optimisation resumes after
    the last recorded generation and ends with the same kernels, fitness and history (bar the
    elapsed times). ``on_generation``: see :data:`GenerationHook`.
    """
    if method not in ("cma", "pso"):
        raise ValueError(f"method must be 'cma' or 'pso', got {method!r}")
    name = label or {"cma": "CMA-ES", "pso": "PSO"}[method]
    conv = [(np.array(a), np.array(b)) for a, b in conv0]
    ckpt = None if checkpoint_dir is None else Path(checkpoint_dir)
    rows, fits, resumed, start_fit = [], [], [], None
    clock = _Clock()
    for li in range(len(conv)):
        ev = PopulationFitness(conv, li, x_ref, y_ref, x_val, y_val, k=k, pop_chunk=pop_chunk, image_batch=image_batch)
        scale = glorot_std(conv[li])
        x0 = flatten_layer(conv[li])
        path = None if ckpt is None else ckpt / f"layer{li + 1}.json"
        common = dict(seed=seed + li, layer=li + 1, clock=clock, log_every=log_every, verbose=verbose,
                      checkpoint=path, on_generation=on_generation)
        if method == "cma":
            res = run_cma(ev, x0, sigma * scale, generations, popsize=popsize, **common)
        else:
            res = run_pso(ev, x0, generations, particles=popsize, spread=pso_spread * scale, vmax=pso_vmax * scale,
                          c1=c1, c2=c2, **common)
        conv[li] = ev.decode(res.best)
        fits.append(res.best_fitness)
        resumed.append(res.resumed_at)
        start_fit = res.start_fitness if start_fit is None else start_fit
        for r in res.history:
            r["method"] = name
        rows += res.history
    seconds = rows[-1]["elapsed"] if rows else 0.0
    return SerialResult(name, conv, pd.DataFrame(rows), seconds, fits, resumed, start_fit)

# ------------------------------------------------------------------------------------------
# Evaluation and stored sizes
# ------------------------------------------------------------------------------------------
def knn_accuracy(conv: Sequence[Layer], x_ref, y_ref, x_test, y_test, k: int = 9) -> float:
    """Test accuracy of the sliced network: features of ``conv``, k-NN with ``x_ref`` as reference set."""
    model = sliced_model(conv, x_ref.shape[1:])
    f_ref = model.predict(x_ref, batch_size=256, verbose=0)
    f_te = model.predict(x_test, batch_size=256, verbose=0)
    return KNNHead(k).fit(f_ref, y_ref).score(f_te, y_test)


def inference_copy(model: keras.Model) -> keras.Model:
    """An uncompiled copy of ``model`` with its weights: what an inference engine stores (a trained,
    compiled model would also save its optimizer's state, e.g. Adam's two moments per weight)."""
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def stored_sizes(full_model: keras.Model, conv: Sequence[Layer], x_ref, y_ref) -> pd.DataFrame:
    """Bytes on disk of the inference engines, each written to a temporary file and measured.

    Rows: the full CNN (``.keras`` model and weights-only ``.weights.h5``, no optimizer state), the sliced network's
    kernels only (``.weights.h5`` of the sliced model, and a raw float32 ``.npz``), and kernels
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


def weightssaved_bytes(model: keras.Model) -> int:
    """Bytes of the model's weights-only ``.weights.h5`` file (the paper's "inference engine size"),
    without optimizer state."""
    return saved_bytes(inference_copy(model).save_weights, ".weights.h5")


# ------------------------------------------------------------------------------------------
# Notebook helpers: data, backprop training, history plots
# ------------------------------------------------------------------------------------------
def prepare_images(x: np.ndarray) -> np.ndarray:
    """uint8 images ``(n, 28, 28)`` in 0..255 -> float32 ``(n, 28, 28, 1)`` in [0, 1]."""
    return (np.asarray(x, np.float32) / 255.0)[..., None]


def fitness_split(x, y, n: int, val_fraction: float, seed: int = 0):
    """The evolution's own data: ``n`` of the training images (stratified), split into a k-NN
    reference part and a validation part (``val_fraction``) that the fitness is scored on. The
    test images are never used by the fitness. Returns ``x_ref, y_ref, x_val, y_val``."""
    from sklearn.model_selection import train_test_split

    from ..data import stratified_subset

    xs, ys = stratified_subset(x, y, n, seed)
    x_ref, x_val, y_ref, y_val = train_test_split(xs, ys, test_size=val_fraction, stratify=ys, random_state=seed)
    return x_ref, y_ref, x_val, y_val


def train_cnn(dense_units: int, x_tr, y_tr, x_te, y_te, *, epochs: int, batch_size: int = 128,
              learning_rate: float = 1e-3, seed: int = 0, desc: str = "",
              checkpoint_dir: str | Path | None = None) -> tuple[keras.Model, dict]:
    """Train :func:`build_mnist_cnn` by backprop (Adam, cross-entropy). Returns the model and
    ``{"accuracy", "seconds", "parameters", "weights_bytes"}`` (test accuracy of the softmax head).
    ``checkpoint_dir``: resume from the last finished epoch (:func:`imgclf.train.fit`)."""
    from ..train import fit

    train.set_seed(seed, deterministic=None)
    model = build_mnist_cnn(dense_units)
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = fit(model, x_tr, y_tr, epochs=epochs, batch_size=batch_size, desc=desc or f"CNN {dense_units}",
               checkpoint_dir=checkpoint_dir, seed=seed)
    acc = float(model.evaluate(x_te, y_te, batch_size=512, verbose=0)[1])
    return model, {"accuracy": acc, "seconds": hist["seconds"], "parameters": model.count_params(),
                   "weights_bytes": weightssaved_bytes(model)}


# ------------------------------------------------------------------------------------------
# Run units (imgclf.runs): each backprop training and each evolution
# ------------------------------------------------------------------------------------------
def conv_arrays(conv: Sequence[Layer]) -> dict[str, np.ndarray]:
    """``{"kernel0", "bias0", "kernel1", ...}`` for :meth:`imgclf.runs.Unit.save_arrays`."""
    return {f"{n}{i}": a for i, layer in enumerate(conv) for n, a in zip(("kernel", "bias"), layer)}


def conv_from_arrays(arrays: dict[str, np.ndarray]) -> list[Layer]:
    n = sum(1 for k in arrays if k.startswith("kernel"))
    return [(arrays[f"kernel{i}"], arrays[f"bias{i}"]) for i in range(n)]


def backprop_unit(runs, dense_units: int, label: str, x_tr, y_tr, x_te, y_te, *, epochs: int, batch_size: int,
                  learning_rate: float, seed: int) -> tuple[dict | None, keras.Model | None]:
    """One backprop training as a run unit (resumable per epoch; its weights stored in the unit).
    Returns ``(metrics, trained model)``, or ``(None, None)`` when the time budget is spent."""
    settings = dict(dense_units=dense_units, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    name = f"backprop CNN {dense_units} [{label}]"
    unit = runs.unit(name, settings, (x_tr, y_tr, x_te, y_te), seed)

    def work(unit):
        model, r = train_cnn(dense_units, x_tr, y_tr, x_te, y_te, epochs=epochs, batch_size=batch_size,
                             learning_rate=learning_rate, seed=seed, desc=name, checkpoint_dir=unit.checkpoint)
        model.save_weights(unit.path("model.weights.h5"))
        return r

    res = runs.run(name, work, settings=settings, data=(x_tr, y_tr, x_te, y_te), seed=seed)
    if res is None:
        return None, None
    model = build_mnist_cnn(dense_units)
    model.load_weights(unit.dir / "model.weights.h5")
    return res, model


def evolution_settings(method: str, start: str, P: dict, generations: int, sigma: float, spread: float) -> dict:
    """Every setting an evolution's result depends on (the run unit's key)."""
    s = dict(method=method, start=start, generations=generations, popsize=P["popsize"], k=P["k"],
             pop_chunk=P["pop_chunk"], image_batch=P["image_batch"])
    if method == "cma":
        s.update(sigma=sigma)
    else:
        s.update(pso_spread=spread, pso_vmax=P["pso_vmax"], pso_c1=P["pso_c1"], pso_c2=P["pso_c2"])
    return s


def evolution_unit(runs, method: str, start: str, conv0: Sequence[Layer], fit_data, eval_data, *, P: dict, seed: int,
                   label: str, memo: dict | None = None, on_generation: GenerationHook | None = None,
                   verbose: bool = True) -> tuple[dict | None, list[Layer] | None]:
    """One serial evolution (:func:`optimise_serial`) as a run unit: resumable per generation, its
    kernels stored in the unit. ``start``: ``"random"`` or ``"backprop"`` (picks the step sizes:
    ``random_generations``/``sigma_random``/``pso_spread_random`` or their fine-tuning values);
    ``fit_data``: ``(x_ref, y_ref, x_val, y_val)`` of the fitness; ``eval_data``:
    ``(x_train, y_train, x_test, y_test)`` of the setting. Returns ``(result, kernels)`` where the
    result holds the method, seed, fitness at the start and after each layer, the history (one
    record per generation), the seconds, ``test_accuracy`` (k-NN with the setting's training images
    as reference set, on its test images) and ``fitness_ref_test_accuracy`` (k-NN with the fitness'
    reference images, on the same test images); ``(None, None)`` when the budget is spent.
    ``memo`` (a dict) returns a unit already run in this process (e.g. the same evolution in two
    Table 2 columns that share their training images) without running it again."""
    rand = start == "random"
    gens = P["random_generations"] if rand else P["generations"]
    sigma = P["sigma_random"] if rand else P["sigma_finetune"]
    spread = P["pso_spread_random"] if rand else P["pso_spread_finetune"]
    settings = evolution_settings(method, start, P, gens, sigma, spread)
    name = f"{dict(cma='CMA-ES', pso='PSO')[method]} {'random start' if rand else 'fine-tune'} seed {seed} [{label}]"
    data = (conv_arrays(conv0), list(fit_data), list(eval_data))
    unit = runs.unit(name, settings, data, seed)
    if memo is not None and unit.key in memo:
        return memo[unit.key]
    x_tr, y_tr, x_te, y_te = eval_data

    def hook(layer, gen, state):
        if on_generation is not None:
            on_generation(layer, gen, state)
        check_budget()  # the generation is recorded: a spent budget stops here, resumed next run

    def work(unit):
        r = optimise_serial(method, conv0, *fit_data, generations=gens, popsize=P["popsize"], k=P["k"], seed=seed,
                            sigma=sigma, pso_spread=spread, pso_vmax=P["pso_vmax"], c1=P["pso_c1"], c2=P["pso_c2"],
                            pop_chunk=P["pop_chunk"], image_batch=P["image_batch"], checkpoint_dir=unit.checkpoint,
                            on_generation=hook, verbose=verbose)
        unit.save_arrays("kernels.npz", **conv_arrays(r.conv))
        return dict(method=r.method, start=start, seed=seed, fitness_start=r.fitness_start,
                    fitness_per_layer=r.fitness, fitness_end=r.fitness[-1], seconds=r.seconds,
                    resumed_at=r.resumed_at, history=r.history.to_dict("records"),
                    test_accuracy=knn_accuracy(r.conv, x_tr, y_tr, x_te, y_te, P["k"]),
                    fitness_ref_test_accuracy=knn_accuracy(r.conv, fit_data[0], fit_data[1], x_te, y_te, P["k"]))

    res = runs.run(name, work, settings=settings, data=data, seed=seed)
    out = (None, None) if res is None else (res, conv_from_arrays(unit.load_arrays("kernels.npz")))
    if memo is not None and res is not None:
        memo[unit.key] = out
    return out


# ------------------------------------------------------------------------------------------
# Controls and Table 2
# ------------------------------------------------------------------------------------------
def knn_raw_pixels(x_ref, y_ref, x_test, y_test, k: int = 9) -> float:
    """Control: the k-NN on the raw pixels (no network at all), same reference and test images."""
    flat = lambda a: np.asarray(a, np.float32).reshape(len(a), -1)  # noqa: E731
    return KNNHead(k).fit(flat(x_ref), y_ref).score(flat(x_test), y_test)


ROW_RANDOM = {"cma": "k-NN CMA-ES (random start)", "pso": "k-NN PSO (random start)"}
ROW_FINETUNE = {"cma": "k-NN CMA-ES (fine-tuned from backprop)", "pso": "k-NN PSO (fine-tuned from backprop)"}
ROW_RAW = "control: k-NN on raw pixels"
ROW_RANDOM_KERNELS = "control: k-NN on random kernels (no evolution, no backprop)"
ROW_BACKPROP_KERNELS = "k-NN on backprop kernels (no evolution)"
PAPER_ROW = {ROW_RANDOM["cma"]: "k-NN CMA-ES", ROW_RANDOM["pso"]: "k-NN PSO"}
"""Our Table 2 rows that the paper's rows are compared with: evolution replaces backprop, so the
paper's evolved rows are our random-start rows (its CNN rows keep their names)."""


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


def table2_display(paper: pd.DataFrame, mean: pd.DataFrame, sd: pd.DataFrame, n: pd.DataFrame) -> pd.DataFrame:
    """Paper beside ours per column; ours as ``mean ± sd (n seeds)`` where there are several seeds."""
    def fmt(m, s, k):
        if k == 0 or np.isnan(m):
            return "not run"
        return f"{m:.2f} ± {s:.2f} ({k} seeds)" if k > 1 else f"{m:.2f}"

    out = {}
    for c in mean.columns:
        pap = [paper.loc[PAPER_ROW.get(r, r), c] if PAPER_ROW.get(r, r) in paper.index else np.nan for r in mean.index]
        out[(c, "paper")] = ["" if np.isnan(p) else f"{p:g}" for p in pap]
        out[(c, "ours")] = [fmt(mean.loc[r, c], sd.loc[r, c], n.loc[r, c]) for r in mean.index]
    return pd.DataFrame(out, index=mean.index)


def table2_long(paper: pd.DataFrame, mean: pd.DataFrame, sd: pd.DataFrame, n: pd.DataFrame) -> pd.DataFrame:
    """Table 2 as one record per (model, column), for results.json: the paper's number (where it
    has one), ours (mean over seeds), its sd and the number of seeds; every evolved row also
    carries the two controls of its column and its gap above the random-kernel control."""
    recs = []
    for r in mean.index:
        for c in mean.columns:
            pr = PAPER_ROW.get(r, r)
            rec = dict(model=r, setting=c, paper=paper.loc[pr, c] if pr in paper.index else None,
                       ours=mean.loc[r, c], ours_sd=sd.loc[r, c], seeds=int(n.loc[r, c]))
            if r in ROW_RANDOM.values() or r in ROW_FINETUNE.values():
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


def plot_histories(histories: dict[str, pd.DataFrame], title: str = "", levels: dict[str, float] | None = None):
    """Best-so-far fitness against generation (layer 1's generations, then layer 2's) and against
    wall-clock time, one line per run; a dotted line marks where layer 2 starts. ``levels``:
    horizontal dashed lines (e.g. the fitness of the raw-pixel k-NN on the same images)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for label, h in histories.items():
        h = pd.DataFrame(h).reset_index(drop=True)
        step = np.arange(len(h))
        best = h.groupby("layer")["best_so_far"].cummax()
        axes[0].plot(step, best, marker="o", ms=2, label=label)
        axes[1].plot(h["elapsed"], best, marker="o", ms=2, label=label)
        starts = step[h["layer"].diff().fillna(0).to_numpy() > 0]
        for s in starts:
            axes[0].axvline(s, ls=":", c="grey", lw=0.8)
    for i, (name, y) in enumerate((levels or {}).items()):
        for ax in axes:
            ax.axhline(y, ls="--", lw=1, c=f"C{7 + i}", label=f"{name}: {y:.3f}")
    axes[0].set(xlabel="generation (layer 1, then layer 2)", ylabel="best fitness (k-NN validation accuracy)")
    axes[1].set(xlabel="wall-clock time (s)", ylabel="best fitness (k-NN validation accuracy)")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------
# Profiles: "smoke" runs the notebook on a 2-core CPU in minutes, "paper" at the paper's scale
# ------------------------------------------------------------------------------------------
NOTEBOOK = "04_knn_slicing_evolution"

TITLE = "k-NN slicing with CMA-ES and PSO (Radu)"

RULES = {
    "table2_settings": config.Length(3, "[train images, test images, epochs]"),
    "learning_rate": config.POSITIVE, "fitness_val_fraction": config.OPEN_FRACTION,
    "sigma_random": config.POSITIVE, "sigma_finetune": config.POSITIVE,
    "pso_spread_random": config.POSITIVE, "pso_spread_finetune": config.POSITIVE, "pso_vmax": config.POSITIVE,
}

PROFILES: dict[str, dict] = {
    "smoke": dict(
        table2_settings=[[500, 250, 2], [500, 250, 5], [1500, 500, 2]],
        dense_widths=[128, 64, 32, 16, 8],
        batch_size=128,
        learning_rate=1e-3,
        k=9,
        # the fitness: 5 reference images per class and 100 scored ones (a random start scores
        # ~0.62 there, so evolution has room; with 3200 references it would start at ~0.9)
        fitness_images=150,
        fitness_val_fraction=2 / 3,
        generations=2,
        popsize=8,
        random_generations=12,
        random_start_seeds=1,
        control_seeds=3,
        sigma_random=0.5,
        sigma_finetune=0.1,
        pso_spread_random=0.5,
        pso_spread_finetune=0.1,
        pso_vmax=0.3,
        pso_c1=2.0,
        pso_c2=2.0,
        pop_chunk=8,
        image_batch=500,
    ),
    "paper": dict(
        table2_settings=[[4000, 1000, 5], [4000, 1000, 20], [60000, 10000, 5]],
        dense_widths=[128, 64, 32, 16, 8],
        batch_size=128,
        learning_rate=1e-3,
        k=9,
        fitness_images=4000,
        fitness_val_fraction=0.2,
        generations=150,
        popsize=32,
        random_generations=300,
        random_start_seeds=3,
        control_seeds=5,
        sigma_random=0.5,
        sigma_finetune=0.1,
        pso_spread_random=0.5,
        pso_spread_finetune=0.1,
        pso_vmax=0.3,
        pso_c1=2.0,
        pso_c2=2.0,
        pop_chunk=16,
        image_batch=500,
    ),
}


# ------------------------------------------------------------------------------------------
# The paper's published numbers (typed in from shared/papers/)
# ------------------------------------------------------------------------------------------
TABLE1 = pd.DataFrame(
    {"parameters": [1_200_000, 122_000, 70_000, 44_600, 31_700],
     "inference engine size (KB)": [4.5 * 1024, 0.5 * 1024, 273, 174, 124]},
    index=pd.Index([128, 64, 32, 16, 8], name="units in 1st dense layer"),
)
"""Table 1: width of the first dense layer, trained parameters, saved model size (MB as KB)."""

TABLE2 = pd.DataFrame(
    {"4000/1000, 5 epochs": [97.5, 97, 97, 96.1, 87.5, 97.5, 97.3],
     "4000/1000, 20 epochs": [98, 97.5, 97.5, 97.4, 96.5, 97.5, 97.3],
     "60000/10000, 5 epochs": [99.91, 98.96, 98.98, 98.65, 97.8, 98.57, 98.52]},
    index=pd.Index(["CNN 128", "CNN 64", "CNN 32", "CNN 16", "CNN 8", "k-NN CMA-ES", "k-NN PSO"], name="model"),
)
"""Table 2: test accuracy (%), train/test images and epochs; CMA-ES/PSO rows are the 18.8k conv
parameters under a k=9 k-NN head. Columns in the order of the notebook's ``table2_settings``."""

SLICED_SIZE_KB = 74
"""The k-NN sliced inference engine (kernels only, k=9), paper's "74 KB"."""
