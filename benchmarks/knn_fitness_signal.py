"""Does paper 4's fitness tell candidates apart? Rank correlation of one fitness on two disjoint image sets.

An optimiser can only climb a fitness whose differences between nearby candidates are repeatable.
This draws ``--candidates`` conv kernels around a start (the random Glorot kernels of the seed, and
the kernels of a CNN trained by backprop on the setting's training images), one layer at a time
(the other layer fixed at the start), each a Gaussian step of ``--sigma`` times the layer's Glorot
std from it, as the optimiser's first generation draws them. Each candidate is scored by the fitness
of the profile (:class:`imgclf.models.knn.PopulationFitness`, ``score=cfg.fitness``) twice: on set A,
the profile's own fitness images (drawn from the setting's training images), and on set B, as many
other MNIST training images, disjoint from A. It prints, per start and layer, the Spearman rank
correlation of the A and B scores across candidates (scipy)::

    layer 1, random start, soft-loo fitness (1000 images): rank correlation: 0.87 (p = ...)

A fitness whose candidates rank alike on A and B has signal; one near 0 ranks by noise, and the
best candidate on A is no better on B. ``--scores`` also scores the other fitness definitions for
comparison (``accuracy``: the 0/1 k-NN accuracy on the scored part of the images).

    python benchmarks/knn_fitness_signal.py                                  # profile cpu4000, 32 candidates
    python benchmarks/knn_fitness_signal.py --scores soft-loo,accuracy --candidates 48
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
    ap.add_argument("--profile", default="cpu4000", help="the paper 4 profile whose fitness is measured")
    ap.add_argument("--data-dir", default=None, help="data directory (default: $IMGCLF_DATA, else data/)")
    ap.add_argument("--candidates", type=int, default=32)
    ap.add_argument("--sigma", type=float, default=None, help="step in Glorot stds (default: the profile's sigma_random)")
    ap.add_argument("--scores", default=None, help="comma-separated fitness definitions (default: the profile's)")
    ap.add_argument("--starts", default="random,backprop")
    ap.add_argument("--layers", default="1,2")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from scipy.stats import spearmanr

    from imgclf import config, data
    from imgclf.models.knn import PopulationFitness, flatten_layer, glorot_std, random_conv_layers
    from imgclf.papers import p04_knn_slicing_evolution as p04
    from imgclf.papers.p04_knn_slicing_evolution import pipeline

    cfg = config.make(p04.config, args.profile, args.seed)
    scores = args.scores.split(",") if args.scores else [cfg.fitness]
    sigma = cfg.sigma_random if args.sigma is None else args.sigma
    (x_all, y_all), test_xy = data.load_mnist(args.data_dir)
    s = next(iter(pipeline.make_settings(cfg, (x_all, y_all), test_xy).values()))
    set_a = s.fit_data
    # set B: as many training images as A, none of them among the setting's training images
    used = {hash(im.tobytes()) for im in (s.x_tr[..., 0] * 255).round().astype(np.uint8)}
    rest = np.array([i for i in range(len(y_all)) if hash(x_all[i].tobytes()) not in used])
    xb, yb = data.stratified_subset(x_all[rest], y_all[rest], cfg.fitness_images, args.seed + 1)
    set_b = pipeline.fitness_split(pipeline.prepare_images(xb), yb, cfg.fitness_images, cfg.fitness_val_fraction,
                                   args.seed)
    print(f"profile {cfg.profile}: setting {s.label}; fitness images per set {cfg.fitness_images} "
          f"({len(set_a[1])} reference + {len(set_a[3])} scored), k = {cfg.k}; {args.candidates} candidates, "
          f"step {sigma:g} x Glorot std; sets A and B disjoint")

    starts = {}
    for name in args.starts.split(","):
        if name == "random":
            starts["random start"] = random_conv_layers(pipeline.FILTERS, seed=args.seed)
        else:
            epochs = s.epochs
            t = time.perf_counter()
            model, r = pipeline.train_cnn(128, s.x_tr, s.y_tr, s.x_te, s.y_te, epochs=epochs, batch_size=cfg.batch_size,
                                          learning_rate=cfg.learning_rate, seed=args.seed)
            print(f"backprop start: CNN 128, {epochs} epochs, test accuracy {r['accuracy']:.4f} "
                  f"({time.perf_counter() - t:.0f} s)")
            starts["backprop start"] = pipeline.conv_layers(model)

    worst = np.inf
    for start_name, conv in starts.items():
        for layer in (int(v) for v in args.layers.split(",")):
            li = layer - 1
            rng = np.random.default_rng(args.seed + 10 * layer)
            x0 = flatten_layer(conv[li])
            pop = x0 + rng.normal(0, sigma * glorot_std(conv[li]), (args.candidates, len(x0)))
            for score in scores:
                t = time.perf_counter()
                fa = PopulationFitness(conv, li, *set_a, k=cfg.k, pop_chunk=cfg.pop_chunk,
                                       image_batch=cfg.image_batch, score=score)(pop)
                fb = PopulationFitness(conv, li, *set_b, k=cfg.k, pop_chunk=cfg.pop_chunk,
                                       image_batch=cfg.image_batch, score=score)(pop)
                secs = (time.perf_counter() - t) / (2 * len(pop))
                rho, p = spearmanr(fa, fb)
                if score == cfg.fitness:
                    worst = min(worst, rho)
                print(f"layer {layer}, {start_name}, {score} fitness ({cfg.fitness_images} images): "
                      f"A {fa.min():.4f}..{fa.max():.4f}, B {fb.min():.4f}..{fb.max():.4f}, "
                      f"{secs:.2f} s per candidate; rank correlation: {rho:.2f} (p = {p:.1e})", flush=True)
    print(f"lowest rank correlation of the profile's fitness ({cfg.fitness}): {worst:.2f} "
          f"({'meets' if worst >= 0.5 else 'misses'} the target of 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
