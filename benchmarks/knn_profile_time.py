"""How long a paper 4 profile takes on this machine: each kind of unit timed on a short run, then extrapolated.

Times, on the profile's first Table 2 setting and its fitness images: the controls (k-NN on raw
pixels and on random kernels, one draw), one backprop epoch of the widest CNN, and a few generations
of each optimiser's search (per layer: ``--generations`` generations of each layer; per filter: that
many generations of one filter of each layer). The per-generation times are then multiplied out to
the profile's generations, filters, seeds, methods and searches, and the total is printed with the
share of each part::

    python benchmarks/knn_profile_time.py --profile cpu4000       # about 5 minutes on 2 cores

Fewer generations than the profile's give a rougher figure; the last line says how the total was
extrapolated. Times are CPU seconds of this process (all its threads: ``time.process_time``), so a
busy machine does not inflate them; the wall time of the timed part is printed beside them.
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
    ap.add_argument("--profile", default="cpu4000")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--generations", type=int, default=2, help="generations timed per layer or filter")
    ap.add_argument("--backprop", action="store_true", help="also time one backprop epoch (else: not counted)")
    args = ap.parse_args(argv)

    from imgclf import config, data
    from imgclf.models.knn import PopulationFitness, flatten_layer, glorot_std, random_conv_layers
    from imgclf.papers import p04_knn_slicing_evolution as p04
    from imgclf.papers.p04_knn_slicing_evolution import pipeline
    from imgclf.reports import hardware

    cfg = config.make(p04.config, args.profile, 0)
    hw = hardware()
    print(f"hardware: {hw['cpu']} ({hw['cpu_count']} cores), load average {os.getloadavg()[0]:.1f}")
    s = next(iter(pipeline.make_settings(cfg, *data.load_mnist(args.data_dir)).values()))
    print(f"profile {cfg.profile}: setting {s.label}, fitness {cfg.fitness} on {cfg.fitness_images} images, "
          f"popsize {cfg.popsize}, searches {list(cfg.searches)}")
    parts = {}

    t = time.process_time()
    pipeline.controls(cfg, s, [0])
    one_draw = time.process_time() - t
    parts["controls"] = one_draw * max(cfg.control_seeds, cfg.random_start_seeds) * len(cfg.table2_settings)

    if args.backprop:
        t = time.process_time()
        pipeline.train_cnn(max(cfg.dense_widths), s.x_tr, s.y_tr, s.x_te, s.y_te, epochs=1, batch_size=cfg.batch_size,
                           learning_rate=cfg.learning_rate)
        epoch = time.process_time() - t
        parts["backprop"] = epoch * sum(e for _, _, e in cfg.table2_settings) * len(cfg.dense_widths)
        print(f"one backprop epoch of CNN {max(cfg.dense_widths)}: {epoch:.1f} CPU s")

    conv = random_conv_layers(pipeline.FILTERS, seed=0)
    g = args.generations
    per_eval = {}
    for li in range(2):  # seconds per candidate of a whole-layer search and of a one-filter search
        ev = PopulationFitness(conv, li, *s.fit_data, k=cfg.k, pop_chunk=cfg.pop_chunk, image_batch=cfg.image_batch,
                               score=cfg.fitness)
        x0 = flatten_layer(conv[li])
        pop = x0 + np.random.default_rng(0).normal(0, cfg.sigma_random * glorot_std(conv[li]), (g * cfg.popsize, len(x0)))
        ev(pop[: cfg.pop_chunk])  # compile
        t, wall = time.process_time(), time.perf_counter()
        ev(pop)
        per_eval[li] = (time.process_time() - t) / len(pop)
        print(f"layer {li + 1}: {per_eval[li]:.3f} CPU s per candidate ({len(pop)} timed; "
              f"{(time.perf_counter() - wall) / len(pop):.2f} s wall each at load {os.getloadavg()[0]:.0f})")

    runs = 2 * cfg.random_start_seeds * len(cfg.table2_settings)  # CMA-ES and PSO, every seed and setting
    filters = pipeline.FILTERS
    for search in cfg.searches:
        if search == "layer":
            evals = [1 + cfg.random_generations * cfg.popsize] * 2
        else:
            evals = [f * (1 + cfg.filter_generations * cfg.popsize) for f in filters]
        unit = sum(e * per_eval[li] for li, e in enumerate(evals))
        parts[f"evolution per {search}"] = unit * runs
        print(f"one evolution unit per {search}: {sum(evals)} candidates, about {unit / 60:.1f} CPU min; x {runs} units")
    if cfg.finetune:
        print("fine-tuning runs are not counted (profile has finetune on)")
    total = sum(parts.values())
    for k, v in parts.items():
        print(f"  {k:28s} {v / 3600:6.2f} CPU h  ({100 * v / total:4.1f} %)")
    print(f"profile {cfg.profile}: about {total / 3600:.2f} CPU hours on this machine "
          f"(extrapolated from {g} timed generations per layer{'' if args.backprop else '; backprop not timed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
