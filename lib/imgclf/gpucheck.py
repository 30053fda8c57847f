"""``./run_all.sh gpu-check [OUT]``: one prepared command for a lent GPU machine (or, at tiny sizes,
for a CPU, which is how it is rehearsed and tested).

Writes ``OUT/gpu_check.json`` and ``OUT/gpu_check.txt`` (``OUT``: the argument, else ``$OUT``, else
``reports/gpu-check``) with:

- the machine: device and driver (``nvidia-smi``), backend and versions;
- the portable test subset (``pytest -m portable``) on that backend;
- paper 3: training images/s of VGG-16, GoogLeNet and ResNet-18 (224 px, mixed precision, the
  paper's batch 32 and a larger one) and the paper profile's time extrapolated from them, beside
  the paper's hours per run;
- paper 4: the batched k-NN fitness of a population of conv kernels on the accelerator against the
  same machine's CPU;
- paper 5: MobileNet and ResNet50 training-step times beside the paper's 176 ms and 2 s.

Every step has a time cap and the whole check stays under 8 minutes on one GPU; a step that fails
is recorded with its error and the others still run. On a machine without an accelerator every
step runs at tiny sizes and the JSON says ``"tiny": true``: those numbers rehearse the command,
they measure nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

PAPER3_HOURS_PER_RUN = {"vgg16": 4.0, "googlenet": 1.5, "resnet18": 1.2}
"""Paper 3's reported training time per run on Colab (hours), for the extrapolation's comparison."""

PAPER5_STEP_SECONDS = {"mobilenet": 0.176, "resnet50": 2.0}
"""Paper 5's reported time per training step: MobileNet 176 ms, ResNet50 2 s."""


def _timed(fn, *args, **kwargs) -> dict:
    t0 = time.perf_counter()
    try:
        out = fn(*args, **kwargs)
        return {"ok": True, "seconds": round(time.perf_counter() - t0, 2), **out}
    except Exception as e:  # noqa: BLE001  (a failing step is recorded; the next one still runs)
        return {"ok": False, "seconds": round(time.perf_counter() - t0, 2), "error": f"{type(e).__name__}: {e}",
                "trace": traceback.format_exc()[-2000:]}


def machine() -> dict:
    """Device, driver, backend and library versions."""
    import keras

    from . import backend

    out = {"python": platform.python_version(), "platform": platform.platform(), "backend": backend.describe(),
           "keras": keras.__version__, "numpy": np.__version__}
    for mod in ("jax", "jaxlib", "tensorflow", "torch", "cma", "deap", "sklearn"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            out[mod] = None
    if shutil.which("nvidia-smi"):
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=30)
        out["nvidia_smi"] = q.stdout.strip()
    return out


def portable_tests(timeout: int) -> dict:
    """``pytest -m portable`` on this backend: passed / failed / skipped counts and the summary line."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "lib") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "pytest", "-m", "portable", "-q", "-p", "no:cacheprovider", str(REPO / "tests")]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"summary": f"timed out after {timeout} s"}
    last = [ln for ln in p.stdout.splitlines() if ln.strip()][-1:] or [""]
    counts = {k: 0 for k in ("passed", "failed", "skipped", "error")}
    for part in last[0].replace("=", "").split(","):
        words = part.split()
        if len(words) >= 2 and words[1].rstrip("s") in counts:
            counts[words[1].rstrip("s")] = int(words[0])
    return {"returncode": p.returncode, "summary": last[0].strip(), **counts,
            "failures": [ln for ln in p.stdout.splitlines() if ln.startswith("FAILED")][:20]}


def _images_per_second(model, x, y, batch: int, warmup: int, steps: int) -> float:
    model.fit(x[: batch * warmup], y[: batch * warmup], batch_size=batch, epochs=1, verbose=0, shuffle=False)
    t0 = time.perf_counter()
    model.fit(x[: batch * steps], y[: batch * steps], batch_size=batch, epochs=1, verbose=0, shuffle=False)
    return batch * steps / (time.perf_counter() - t0)


def paper3(tiny: bool, epochs_per_run: int) -> dict:
    """Training images/s per network and batch, and the extrapolated paper profile time."""
    import keras

    from . import backend
    from .models import cnns

    size, batches, warmup, steps = (32, [8], 1, 2) if tiny else (224, [32, 256], 10, 40)
    backend.use_mixed_precision(not tiny)
    out = {"image_size": size, "mixed_precision": not tiny, "epochs_per_run": epochs_per_run, "runs": {}}
    rng = np.random.default_rng(0)
    for arch in ("vgg16", "googlenet", "resnet18"):
        rec = {}
        for b in batches:
            keras.backend.clear_session()
            m = cnns.build_mnist_classifier(arch, image_size=size)
            m.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy",
                      jit_compile=not tiny)
            n = b * max(warmup, steps)
            x = rng.integers(0, 256, (n, 28, 28, 1)).astype("float32")
            y = rng.integers(0, 10, n)
            rec[f"batch {b}"] = round(_images_per_second(m, x, y, b, warmup, steps), 1)
        best = max(rec.values())
        hours = epochs_per_run * 60_000 / best / 3600
        rec.update(best_images_per_s=best, hours_per_run=round(hours, 3), paper_hours_per_run=PAPER3_HOURS_PER_RUN[arch])
        out["runs"][arch] = rec
    # Table I: each network with SGD and Adam at two learning rates = 4 runs per network
    out["paper_profile_hours"] = round(sum(4 * r["hours_per_run"] for r in out["runs"].values()), 2)
    backend.use_mixed_precision(False)
    return out


def paper5(tiny: bool) -> dict:
    """Seconds per training step of MobileNet (224 px) and ResNet50 (256 px), batch 32, random weights."""
    import keras

    from .models import transfer

    out = {}
    batch, warmup, steps = (2, 1, 2) if tiny else (32, 5, 20)
    rng = np.random.default_rng(0)
    for arch, build, size in (("mobilenet", transfer.build_mobilenet, 224), ("resnet50", transfer.build_resnet50, 256)):
        keras.backend.clear_session()
        s = 64 if tiny else size
        tm = build(input_size=s, num_classes=5, weights=None, train_base=True)
        model = tm.model if hasattr(tm, "model") else tm
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
        x = rng.random((batch * steps, s, s, 3)).astype("float32") * 255
        y = rng.integers(0, 5, batch * steps)
        ips = _images_per_second(model, x, y, batch, warmup, steps)
        out[arch] = {"input_size": s, "batch": batch, "seconds_per_step": round(batch / ips, 4),
                     "paper_seconds_per_step": PAPER5_STEP_SECONDS[arch]}
    return out


def paper4(tiny: bool) -> dict:
    """The batched k-NN fitness (:class:`imgclf.models.knn.PopulationFitness`, the paper profile's
    soft leave-one-out score over 4,000 fitness images) of candidate conv-2 layers: candidates/s on
    the accelerator against the same machine's CPU, side by side in one run."""
    import contextlib

    from . import backend, config
    from .models import knn

    cfg = config.resolve("04_knn_slicing_evolution", "paper")
    n, chunk, pop, cpu_pop = (150, 4, 8, 8) if tiny else (cfg.fitness_images, 8, 64, 16)
    n_val = int(round(n * cfg.fitness_val_fraction))
    rng = np.random.default_rng(0)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, n)
    conv = knn.random_conv_layers((32, 64), seed=0)
    dim = int(np.prod(conv[1][0].shape) + conv[1][0].shape[-1])
    genomes = rng.normal(0, 0.05, (pop, dim)).astype(np.float32)

    def rate(device, count: int) -> float:
        ctx = contextlib.nullcontext()
        if device == "cpu" and backend.name() == "jax":
            import jax

            ctx = jax.default_device(jax.devices("cpu")[0])
        with ctx:
            f = knn.PopulationFitness(conv, 1, x[n_val:], y[n_val:], x[:n_val], y[:n_val], k=cfg.k,
                                      pop_chunk=chunk, score=cfg.fitness)
            f(genomes[:chunk])  # compile
            t0 = time.perf_counter()
            f(genomes[:count])
            return count / (time.perf_counter() - t0)

    out = {"fitness": cfg.fitness, "fitness_images": n, "candidates": pop, "cpu_candidates": cpu_pop}
    out["cpu_candidates_per_s"] = round(rate("cpu", cpu_pop), 3)
    out["device_candidates_per_s"] = round(rate("default", pop), 3)
    out["speedup"] = round(out["device_candidates_per_s"] / out["cpu_candidates_per_s"], 2)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default=os.environ.get("OUT") or str(REPO / "reports" / "gpu-check"))
    ap.add_argument("--tiny", action="store_true", help="tiny sizes even on a GPU (the default without one)")
    ap.add_argument("--skip-tests", action="store_true")
    a = ap.parse_args(argv)
    from . import backend

    tiny = a.tiny or not backend.accelerators()
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res = {"tiny": tiny, "note": ("tiny sizes on a CPU: a rehearsal of the command, not a measurement"
                                  if tiny else "one GPU, full sizes"), "machine": _timed(machine)}
    if not a.skip_tests:
        res["portable_tests"] = _timed(portable_tests, 300 if tiny else 200)
    try:
        from . import config as _config

        epochs = int(getattr(_config.resolve("03_mnist_deep_cnns", "paper"), "epochs", 10))
    except Exception:  # noqa: BLE001
        epochs = 10
    res["paper3"] = _timed(paper3, tiny, epochs)
    res["paper4"] = _timed(paper4, tiny)
    res["paper5"] = _timed(paper5, tiny)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    (out_dir / "gpu_check.json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [f"gpu-check: {res['note']}; {res['seconds']} s",
             f"machine: {json.dumps(res['machine'].get('backend'))} {res['machine'].get('nvidia_smi', 'no nvidia-smi')}"]
    if "portable_tests" in res:
        lines.append(f"portable tests: {res['portable_tests'].get('summary', res['portable_tests'].get('error'))}")
    for step in ("paper3", "paper4", "paper5"):
        r = res[step]
        lines.append(f"{step}: " + (json.dumps({k: v for k, v in r.items() if k not in ('trace',)}) if r["ok"]
                                    else f"FAILED {r['error']}"))
    (out_dir / "gpu_check.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(res[s]["ok"] for s in ("paper3", "paper4", "paper5")) else 1


if __name__ == "__main__":
    sys.exit(main())
