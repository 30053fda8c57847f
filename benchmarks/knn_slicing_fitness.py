"""Population fitness for k-NN slicing: per-individual Keras + scikit-learn vs one batched TF pass.

Both ways score the same population of conv kernels (one layer of the classic MNIST CNN, the
others fixed) on the same MNIST images: the reference set is ``--ref`` training images, the
fitness is the k-NN (k=9) accuracy on ``--val`` other training images.

(a) straightforward: for each individual, set its kernels into a Keras model, ``predict`` the
    features, fit scikit-learn's ``KNeighborsClassifier`` and score it (on the CPU);
(b) batched: :class:`imgclf.models.knn.PopulationFitness` (stacked kernels, distances by matrix
    product, ``top_k``), on ``--batched-device`` (default: TensorFlow's choice, the GPU if any).

Both are warmed up once (graph tracing) before timing. TensorFloat-32 is off for both (the evaluator
turns it off: on an Ampere+ GPU it would change distances, so neighbours and the fitness). The script checks that the fitness values
agree (exactly, or within one validation image for a float32 near-tie), prints individuals/s for
each and ends with ``speedup: <ratio>x``. ``--cma-generations N`` also times one full serial
CMA-ES run (both layers, N generations each) on the same images with the batched evaluator.

    python benchmarks/knn_slicing_fitness.py --data-dir ../shared/data            # CPU: 4000/1000, P=8
    python benchmarks/knn_slicing_fitness.py --population 64 --cma-generations 150  # on a GPU
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None, help="data directory (default: $IMGCLF_DATA, else data/)")
    ap.add_argument("--ref", type=int, default=3200, help="reference (k-NN training) images")
    ap.add_argument("--val", type=int, default=800, help="fitness (validation) images")
    ap.add_argument("--population", type=int, default=8)
    ap.add_argument("--layer", type=int, default=2, choices=(1, 2), help="the conv layer whose kernels vary")
    ap.add_argument("--k", type=int, default=9)
    ap.add_argument("--pop-chunk", type=int, default=None, help="candidates per batched pass (default: all)")
    ap.add_argument("--batched-device", default=None, help="e.g. /GPU:0 or /CPU:0 (default: TensorFlow's choice)")
    ap.add_argument("--cma-generations", type=int, default=0, help="also time one serial CMA-ES run")
    ap.add_argument("--cma-popsize", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import tensorflow as tf
    from imgclf import data, train
    from imgclf.papers.p04_knn_slicing_evolution import pipeline as evolve
    from imgclf.reports import hardware

    train.set_seed(args.seed)
    (x, y), _ = data.load_mnist(args.data_dir)
    x, y = data.stratified_subset(x, y, args.ref + args.val, args.seed)
    x = (x / 255.0).astype(np.float32)[..., None]
    x_ref, y_ref, x_val, y_val = x[: args.ref], y[: args.ref], x[args.ref :], y[args.ref :]
    li = args.layer - 1
    conv = evolve.random_conv_layers((32, 64), seed=args.seed)
    rng = np.random.default_rng(args.seed)
    x0 = evolve.flatten_layer(conv[li])
    pop = (x0 + rng.normal(0, 0.5 * evolve.glorot_std(conv[li]), (args.population, len(x0)))).astype(np.float32)
    hw = hardware()
    print(f"hardware: {hw['cpu']} ({hw['cpu_count']} cores), GPUs: {hw['gpus'] or 'none'}; TF {hw['tensorflow']}")
    print(f"population {args.population} x {len(x0)} parameters (conv layer {args.layer}); "
          f"reference {args.ref} / fitness {args.val} images; k={args.k}")

    # (a) straightforward, on the CPU
    with tf.device("/CPU:0"):
        model = evolve.sliced_model(conv, x.shape[1:])
        evolve.fitness_per_individual(conv, li, pop[0], x_ref[:300], y_ref[:300], x_val[:50], y_val[:50], args.k, model)
        t = time.perf_counter()
        fa = np.array([evolve.fitness_per_individual(conv, li, g, x_ref, y_ref, x_val, y_val, args.k, model)
                       for g in pop])
        ta = time.perf_counter() - t

    # (b) batched
    dev = args.batched_device or ("/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0")
    with tf.device(dev):
        ev = evolve.PopulationFitness(conv, li, x_ref, y_ref, x_val, y_val, k=args.k,
                                      pop_chunk=args.pop_chunk or args.population)
        ev(pop)  # warm-up: trace the graphs
        t = time.perf_counter()
        fb = ev(pop)
        tb = time.perf_counter() - t

    diff = np.abs(fa - fb)
    tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
    print(f"TensorFloat-32: {'ON (distances may differ on a GPU)' if tf32 else 'off'} (PopulationFitness turns it off)")
    print(f"(a) Keras predict + scikit-learn k-NN, per individual (CPU): {ta:8.2f} s  "
          f"{args.population / ta:8.2f} individuals/s")
    print(f"(b) batched TF pass ({dev}):                                  {tb:8.2f} s  "
          f"{args.population / tb:8.2f} individuals/s")
    print(f"fitness (a): {np.round(fa, 5).tolist()}")
    print(f"fitness (b): {np.round(fb, 5).tolist()}")
    print(f"equal fitness: {int((diff == 0).sum())}/{len(diff)} exactly, max |difference| {diff.max():.5f} "
          f"(one validation image = {1 / args.val:.5f})")
    ok = diff.max() <= 1.0 / args.val + 1e-12

    if args.cma_generations:
        with tf.device(dev):
            t = time.perf_counter()
            res = evolve.optimise_serial("cma", conv, x_ref, y_ref, x_val, y_val, generations=args.cma_generations,
                                         popsize=args.cma_popsize, k=args.k, seed=args.seed,
                                         pop_chunk=args.pop_chunk or args.cma_popsize)
            secs = time.perf_counter() - t
        print(f"CMA-ES serial run: 2 layers x {args.cma_generations} generations x {args.cma_popsize} candidates "
              f"in {secs:.1f} s ({secs / 60:.2f} min); best fitness per layer {np.round(res.fitness, 4).tolist()}")

    if not ok:
        print("FAILED: the two evaluators disagree by more than one validation image", file=sys.stderr)
    print(f"speedup: {ta / tb:.2f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
