"""Profiles and paths.

A *profile* is a named set of defaults for one notebook: ``smoke`` runs the whole notebook on a
2-core CPU in minutes, ``paper`` runs it at the paper's scale. A notebook's ``parameters`` cell
names the profile and may override any single setting; :func:`resolve` merges the two and checks
every value, so a bad parameter stops the notebook at once with a message that names it.

Paths: the data directory is the ``data_dir`` parameter when given, else the ``IMGCLF_DATA``
environment variable, else ``data/`` at the top of the repository. This module is the only place
that reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

PROFILE_NAMES = ("smoke", "paper")

# --------------------------------------------------------------------------------------------
# Per-notebook profiles. Each notebook reads its own entry through `resolve`.
# --------------------------------------------------------------------------------------------
_PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "01_two_stage_autoencoder": {
        "smoke": dict(
            mnist_train=2000,
            mnist_test=500,
            ae_epochs=8,
            ae_batch_size=64,
            ae_learning_rate=1e-3,
            lrelu_a_mnist=10.0,
            lrelu_a_faces=5.0,
            faces_ae_epochs=60,
            clf_epochs=15,
            faces_clf_epochs=150,
            clf_batch_size=64,
            clf_learning_rate=3e-3,
            dbn_learning_rate=1e-2,
            perceptron_hidden=100,
            dnn_grid=[[64, 32], [300, 100]],
            dbn_grid=[[300, 100]],
            grid_epochs=5,
            faces_grid_epochs=60,
            rbm_epochs=3,
            rbm_learning_rate=0.05,
            fig1_train=1000,
            fig1_epochs=4,
            bottleneck_sizes=[16, 64],
            sweep_train=1000,
            sweep_epochs=4,
            dae_noise=0.2,
            noise_levels=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
            spectra_classes=10,
            spectra_samples=400,
            spectra_length=1000,
            cae_epochs=5,
            cnn_epochs=10,
            dnn_spectra_epochs=10,
            dnn_spectra_hidden=[256, 128],
            class_counts=[5, 10],
            class_sweep_epochs=5,
        ),
        "paper": dict(
            mnist_train=60000,
            mnist_test=10000,
            ae_epochs=20,
            ae_batch_size=256,
            ae_learning_rate=1e-3,
            lrelu_a_mnist=10.0,
            lrelu_a_faces=5.0,
            faces_ae_epochs=300,
            clf_epochs=30,
            faces_clf_epochs=300,
            clf_batch_size=128,
            clf_learning_rate=3e-3,
            dbn_learning_rate=1e-2,
            perceptron_hidden=100,
            dnn_grid=[[100, 50], [300, 100], [500, 200]],
            dbn_grid=[[100, 50], [300, 100], [500, 200]],
            grid_epochs=10,
            faces_grid_epochs=100,
            rbm_epochs=10,
            rbm_learning_rate=0.05,
            fig1_train=10000,
            fig1_epochs=10,
            bottleneck_sizes=[16, 32, 64, 128, 256],
            sweep_train=10000,
            sweep_epochs=10,
            dae_noise=0.2,
            noise_levels=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
            spectra_classes=50,
            spectra_samples=3225,
            spectra_length=4000,
            cae_epochs=30,
            cnn_epochs=150,
            dnn_spectra_epochs=400,
            dnn_spectra_hidden=[512, 256],
            class_counts=[5, 10, 20, 30, 40, 50],
            class_sweep_epochs=30,
        ),
    },
    "02_fracture_cnn": {
        "smoke": dict(
            input_size=28,
            epochs=8,
            batch_size=64,
            learning_rate=1e-3,
            filters=[16, 32, 64],
            dense=64,
            dropout=0.5,
            test_size=0.2,
            val_size=0.1,
            dup_threshold=0.98,
            dup_max_angle=30,
            dup_angle_step=10,
            gradcam_images=6,
            misclassified_images=16,
        ),
        "paper": dict(
            input_size=64,
            epochs=25,
            batch_size=32,
            learning_rate=1e-3,
            filters=[32, 64, 128],
            dense=128,
            dropout=0.5,
            test_size=0.2,
            val_size=0.1,
            dup_threshold=0.98,
            dup_max_angle=30,
            dup_angle_step=10,
            gradcam_images=8,
            misclassified_images=24,
        ),
    },
}

# Notebook 04 (k-NN slicing, CMA-ES and PSO). table2_settings: [train images, test images, epochs].
_PROFILES["04_knn_slicing_evolution"] = {
    "smoke": dict(
        table2_settings=[[500, 250, 2], [500, 250, 5], [1500, 500, 2]],
        dense_widths=[128, 64, 32, 16, 8],
        batch_size=128,
        learning_rate=1e-3,
        k=9,
        fitness_images=300,
        fitness_val_fraction=0.25,
        generations=3,
        popsize=6,
        random_generations=5,
        sigma_random=0.5,
        sigma_finetune=0.1,
        pso_spread_random=0.5,
        pso_spread_finetune=0.1,
        pso_vmax=0.1,
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
        sigma_random=0.5,
        sigma_finetune=0.1,
        pso_spread_random=0.5,
        pso_spread_finetune=0.1,
        pso_vmax=0.1,
        pso_c1=2.0,
        pso_c2=2.0,
        pop_chunk=16,
        image_batch=500,
    ),
}


class ParameterError(ValueError):
    """A notebook parameter has a bad value; the message names the parameter."""


def data_dir(value: str | os.PathLike | None = None) -> Path:
    """The data directory: ``value`` if given, else ``$IMGCLF_DATA``, else ``<repo>/data``."""
    if value is not None:
        return Path(value).expanduser().resolve()
    env = os.environ.get("IMGCLF_DATA")
    if env:
        return Path(env).expanduser().resolve()
    return REPO_ROOT / "data"


def reports_dir(notebook: str, root: str | os.PathLike | None = None) -> Path:
    """``reports/<notebook>/`` (created), under ``root`` or the repository."""
    base = Path(root) if root is not None else REPO_ROOT / "reports"
    out = base / notebook
    out.mkdir(parents=True, exist_ok=True)
    return out


def profiles(notebook: str) -> Mapping[str, Mapping[str, Any]]:
    """The profiles of one notebook (read-only)."""
    if notebook not in _PROFILES:
        raise KeyError(f"no profiles for notebook {notebook!r}; known: {sorted(_PROFILES)}")
    return MappingProxyType({k: MappingProxyType(v) for k, v in _PROFILES[notebook].items()})


def _check_like(name: str, value: Any, default: Any) -> Any:
    """Check ``value`` against the type and sign of the profile's ``default``."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ParameterError(f"parameter {name!r} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterError(f"parameter {name!r} must be an integer, got {value!r}")
        if value <= 0:
            raise ParameterError(f"parameter {name!r} must be positive, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(f"parameter {name!r} must be a number, got {value!r}")
        if value < 0:
            raise ParameterError(f"parameter {name!r} must not be negative, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ParameterError(f"parameter {name!r} must be a string, got {value!r}")
        return value
    if isinstance(default, Sequence):
        if isinstance(value, str) or not isinstance(value, Sequence) or len(value) == 0:
            raise ParameterError(f"parameter {name!r} must be a non-empty list, got {value!r}")
        return [_check_like(f"{name}[{i}]", v, default[0]) for i, v in enumerate(value)]
    return value


def resolve(notebook: str, profile: str, seed: int = 0, **overrides: Any) -> dict[str, Any]:
    """Merge a notebook's profile with its overrides and validate every value.

    ``overrides`` left at ``None`` take the profile's value. Returns a plain dict with
    ``profile`` and ``seed`` included. Raises :class:`ParameterError` naming the parameter.
    """
    if profile not in PROFILE_NAMES:
        raise ParameterError(f"parameter 'profile' must be one of {PROFILE_NAMES}, got {profile!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"parameter 'seed' must be a non-negative integer, got {seed!r}")
    base = dict(profiles(notebook)[profile])
    for name, value in overrides.items():
        if name not in base:
            raise ParameterError(
                f"parameter {name!r} is not a setting of {notebook}; settings: {sorted(base)}"
            )
        if value is not None:
            base[name] = _check_like(name, value, base[name])
    base.update(profile=profile, seed=seed)
    return base


# Notebook 05 (paper 5): MobileNet and ResNet50 transfer learning on Linnaeus 5 / the flowers stand-in.
_PROFILES["05_linnaeus_transfer"] = {
    "smoke": dict(
        n_train=250,                 # stratified subset of the training split
        n_test=150,
        mobilenet_size=224,          # input size with ImageNet weights (frozen base, cached features)
        resnet_size=256,
        scratch_mobilenet_size=64,   # input size when there are no ImageNet weights (whole network trained)
        scratch_resnet_size=32,
        folds=2,
        epochs=2,
        learning_rates=[1e-2, 1e-3, 1e-4, 1e-5, 1e-6],
        batch_size=32,
        resnet_epochs=2,
        resnet_lrs=[1e-3, 1e-4, 1e-5, 1e-6],
        resnet_heads=["1024-1024", "256", "linear"],
        resnet_dropout=0.05,
        step_time_batch=8,
        step_time_steps=2,
    ),
    "paper": dict(
        n_train=1_000_000,
        n_test=1_000_000,
        mobilenet_size=224,
        resnet_size=256,
        scratch_mobilenet_size=128,
        scratch_resnet_size=128,
        folds=5,
        epochs=20,
        learning_rates=[1e-2, 1e-3, 1e-4, 1e-5, 1e-6],
        batch_size=32,
        resnet_epochs=20,
        resnet_lrs=[1e-3, 1e-4, 1e-5, 1e-6],
        resnet_heads=["1024-1024", "256", "linear"],
        resnet_dropout=0.05,
        step_time_batch=32,
        step_time_steps=5,
    ),
}


_PROFILES["03_mnist_deep_cnns"] = {
    # All 12 runs of Table I on a small MNIST subset at 32 px (the smallest size the three
    # networks take), in minutes on a 2-core CPU: the pipeline, not the paper's accuracy.
    "smoke": dict(
        mnist_train=1000,
        mnist_test=300,
        image_size=32,
        epochs=2,
        batch_size=32,
        models=["vgg16", "googlenet", "resnet18"],
        optimizers=["sgd", "adam"],
        learning_rates=[0.001, 0.01],
        momentum=0.0,
        aux_logits=True,
        googlenet_batch_norm=True,
        mixed_precision="auto",
        jit_compile="auto",
        steps_per_execution=1,
        count_params_at_224=True,
    ),
    # The paper: all 60k/10k images at 224 px, 10 epochs, batch 32 (a GPU: mixed precision, XLA).
    "paper": dict(
        mnist_train=60000,
        mnist_test=10000,
        image_size=224,
        epochs=10,
        batch_size=32,
        models=["vgg16", "googlenet", "resnet18"],
        optimizers=["sgd", "adam"],
        learning_rates=[0.001, 0.01],
        momentum=0.0,
        aux_logits=True,
        googlenet_batch_norm=True,
        mixed_precision="auto",
        jit_compile="auto",
        steps_per_execution=125,
        count_params_at_224=True,
    ),
}
