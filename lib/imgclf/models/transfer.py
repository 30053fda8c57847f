"""Transfer learning over ``keras.applications``: MobileNet v1 and ResNet50 heads (paper 5).

Each builder returns a :class:`TransferModel` with three Keras models that share their layers
(and so their weights):

* ``model``: images -> class probabilities, the network as the paper trains it end to end;
* ``features``: images -> the output of the frozen part, up to the first trainable layer;
* ``head``: those features -> class probabilities (the trainable part only).

``model(x)`` equals ``head(features(x))``, so the frozen part can be run once per image and input
size and the head trained on the cached features (:func:`extract_features`), instead of pushing
every image through the frozen layers in every epoch of every fold.

Images go in as float RGB 0..255 of the model's input size; ``preprocess`` is the application's
own ``preprocess_input`` (MobileNet: scale to [-1, 1]; ResNet50: RGB->BGR and ImageNet mean
subtraction). Frozen BatchNormalization layers run in inference mode (Keras 3 does this for every
BN layer with ``trainable=False``), so their moving statistics never change.

``weights``: ``"imagenet"`` (Keras' normal download, cached under ``$KERAS_HOME/models``), ``None``
(random initialisation) or the path of a local weights file (``.h5`` / ``.weights.h5`` of the
no-top application model).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
from keras import layers

__all__ = [
    "TransferModel",
    "IMAGENET_FILES",
    "build_mobilenet",
    "build_resnet50",
    "parse_head",
    "extract_features",
    "imagenet_weights_cached",
    "resolve_weights",
    "weights_damage",
    "WeightsFileError",
    "DamagedCache",
]

# File names keras.applications downloads (no-top variants) into $KERAS_HOME/models.
IMAGENET_FILES = {
    "mobilenet": "mobilenet_1_0_224_tf_no_top.h5",
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
# Where Keras downloads them from (keras/src/applications/{mobilenet,resnet}.py), for the fix in errors.
IMAGENET_URLS = {
    "mobilenet": "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/mobilenet_1_0_224_tf_no_top.h5",
    "resnet50": "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
                "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
# The md5 Keras publishes for them (keras/src/applications/resnet.py WEIGHTS_HASHES); none for MobileNet,
# whose file is checked as HDF5 only (signature, every dataset readable, loads into the model).
IMAGENET_MD5 = {"mobilenet": None, "resnet50": "4d473c1dd8becc155b73f8504c6f6626"}


class WeightsFileError(ValueError):
    """A weights file (cached ImageNet download or a local file) that cannot be used; the message
    names the file, what is wrong and how to fix it."""


class DamagedCache(UserWarning):
    """A cached download that failed its checks and was set aside (``<name>.damaged``)."""


def weights_damage(path: str | os.PathLike, arch: str | None = None) -> str | None:
    """Why the weights file ``path`` cannot be used (not HDF5, e.g. an HTML page; cut short; not the
    md5 Keras publishes for ``arch``'s ImageNet file), or ``None``."""
    from ..data.integrity import h5_damage, md5_file

    why = h5_damage(path)
    if why is None and arch is not None and IMAGENET_MD5.get(arch):
        digest = md5_file(path)
        if digest != IMAGENET_MD5[arch]:
            why = f"has md5 {digest}, not the {IMAGENET_MD5[arch]} Keras publishes for it (another or a changed file)"
    return why


def _imagenet_fix(arch: str, path: Path) -> str:
    return (f"on a machine with internet Keras downloads it again on the next run; offline, download "
            f"{IMAGENET_URLS[arch]} by hand and put it at {path}"
            + (f" (its md5 must be {IMAGENET_MD5[arch]})" if IMAGENET_MD5[arch] else ""))


def _set_aside(arch: str, path: Path, why: str) -> str:
    """Move a damaged cached ImageNet file to ``<name>.damaged`` (Keras would trip over it again) and
    warn naming it; returns the explanation."""
    import warnings

    aside = path.with_name(path.name + ".damaged")
    os.replace(path, aside)
    msg = (f"the cached ImageNet weights file {path} {why}; it was moved to {aside} and is not used: "
           + _imagenet_fix(arch, path))
    warnings.warn(msg, DamagedCache, stacklevel=3)
    return msg


@dataclass
class TransferModel:
    """A transfer-learning network and its frozen/trainable split (shared layers)."""

    name: str
    model: keras.Model
    features: keras.Model | None
    head: keras.Model | None
    preprocess: Callable[[np.ndarray], np.ndarray]
    input_size: int
    weights: str | None
    frozen: bool = True
    info: dict = field(default_factory=dict)


def keras_home() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))


def imagenet_weights_cached(arch: str) -> Path | None:
    """The cached ImageNet no-top weights file of ``arch`` ("mobilenet"/"resnet50"), if present."""
    path = keras_home() / "models" / IMAGENET_FILES[arch]
    return path if path.is_file() else None


def resolve_weights(arch: str, weights: str | os.PathLike | None, download: bool = True) -> tuple[str | None, str]:
    """Decide which weights to use: returns ``(weights, explanation)``.

    ``weights`` is ``"imagenet"``, ``None`` or a file path. For ``"imagenet"`` the Keras cache is
    checked, then (``download``) a normal Keras download is tried by building the model once;
    when that fails the answer is ``(None, reason)``: the caller must then say loudly that the
    run uses random initialisation.

    Every file is checked before use (:func:`weights_damage`): HDF5 signature, every dataset
    readable, and for ResNet50 the md5 Keras publishes. A cached ImageNet file that fails (an HTML
    page saved by a proxy, a download cut short) is moved to ``<name>.damaged`` with a
    :class:`DamagedCache` warning naming it and the fix, and downloaded again when possible; a
    local file that fails raises :class:`WeightsFileError` naming it.
    """
    if weights is None:
        return None, "weights=None: random initialisation"
    if str(weights) != "imagenet":
        p = Path(weights).expanduser()
        if not p.is_file():  # a mistyped path stops the run; it never falls back to random weights
            raise FileNotFoundError(f"{arch} weights file {p} not found (give an existing file, 'imagenet' or None)")
        why = weights_damage(p)
        if why is not None:
            raise WeightsFileError(f"{arch} weights file {p} {why}: give a whole Keras weights file (.h5 or "
                                   "'.weights.h5' of the no-top application model), 'imagenet' or None")
        return str(p), f"local weights file {p} (HDF5 checked)"
    cached, damaged = imagenet_weights_cached(arch), ""
    if cached is not None:
        why = weights_damage(cached, arch)
        if why is None:
            how = "md5 checked" if IMAGENET_MD5[arch] else "HDF5 checked; Keras publishes no hash for it"
            return "imagenet", f"ImageNet weights from the Keras cache {cached} ({how})"
        damaged = _set_aside(arch, cached, why) + ". "
    target = keras_home() / "models" / IMAGENET_FILES[arch]
    if not download:
        return None, damaged + f"no ImageNet weights in {keras_home() / 'models'} (download not attempted)"
    try:
        _application(arch, 224 if arch == "mobilenet" else 256, "imagenet")
    except Exception as e:  # offline, proxy, HTTP error, or a page saved in place of the file
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        if target.is_file():  # downloaded, but not a usable file (a proxy's page, cut short, another model's)
            why = weights_damage(target, arch) or f"does not load into the no-top {arch} ({msg})"
            return None, damaged + "the Keras download failed: " + _set_aside(arch, target, why)
        return None, (damaged + f"no ImageNet weights: {IMAGENET_FILES[arch]} is not in {keras_home() / 'models'} "
                      f"and the Keras download failed ({msg}); " + _imagenet_fix(arch, target))
    if target.is_file() and (why := weights_damage(target, arch)) is not None:  # loaded, yet not the file
        return None, damaged + "the Keras download failed: " + _set_aside(arch, target, why)
    return "imagenet", damaged + f"ImageNet weights downloaded by Keras to {target} (checked)"


def _application(arch: str, size: int, weights: str | None) -> keras.Model:
    """The no-top application model; ``weights`` may be a local file path."""
    shape = (size, size, 3)
    load_file = weights not in (None, "imagenet")
    w = None if load_file else weights
    if arch not in IMAGENET_FILES:
        raise ValueError(f"unknown architecture {arch!r}")
    cached = keras_home() / "models" / IMAGENET_FILES[arch]
    had = w == "imagenet" and cached.is_file()
    try:
        if arch == "mobilenet":
            base = keras.applications.MobileNet(input_shape=shape, alpha=1.0, include_top=False, weights=w)
        else:
            base = keras.applications.ResNet50(input_shape=shape, include_top=False, weights=w)
    except Exception as e:
        if had:  # the file was there (checked by resolve_weights) and still did not load: name it
            first = str(e).splitlines()[0][:300] if str(e) else ""
            raise WeightsFileError(f"the cached ImageNet weights file {cached} does not load into the no-top {arch} "
                                   f"({type(e).__name__}: {first}); delete it: " + _imagenet_fix(arch, cached)) from e
        raise
    if load_file:
        try:
            base.load_weights(str(weights))
        except Exception as e:  # another model's file, a top-included file, a damaged file
            first = str(e).splitlines()[0][:300] if str(e) else ""
            raise WeightsFileError(f"{arch} weights file {weights} does not load into the no-top {arch} at input "
                                   f"size {size} ({type(e).__name__}: {first}); give the weights of that model") from e
    return base


def parse_head(spec: str | Sequence[int]) -> list[int]:
    """A head spec: ``"1024-1024"`` -> ``[1024, 1024]``; ``"linear"`` or ``""`` -> ``[]``."""
    if isinstance(spec, str):
        s = spec.strip().lower()
        if s in ("", "linear", "none"):
            return []
        try:
            widths = [int(t) for t in s.split("-")]
        except ValueError as e:
            raise ValueError(f"bad head spec {spec!r}: use widths joined by '-' (e.g. '1024-1024') or 'linear'") from e
    else:
        widths = [int(t) for t in spec]
    if any(w <= 0 for w in widths):
        raise ValueError(f"bad head spec {spec!r}: widths must be positive")
    return widths


def _dense_head(widths: Sequence[int], dropout: float, num_classes: int) -> list[keras.layers.Layer]:
    out: list[keras.layers.Layer] = []
    for i, w in enumerate(widths):
        out.append(layers.Dense(w, activation="relu", name=f"fc{i + 1}"))
        out.append(layers.Dropout(dropout, name=f"dropout{i + 1}"))
    # float32 even under a mixed_float16 policy: probabilities and the loss stay in full precision
    out.append(layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions"))
    return out


def _apply(stack: Sequence[keras.layers.Layer], x):
    for layer in stack:
        x = layer(x)
    return x


def build_mobilenet(
    input_size: int = 224,
    num_classes: int = 5,
    weights: str | os.PathLike | None = "imagenet",
    train_base: bool = False,
) -> TransferModel:
    """MobileNet v1 (alpha 1.0) + global average pooling + Dense(num_classes) softmax.

    ``(batch, s, s, 3)`` preprocessed images -> MobileNet base ``(batch, s/32, s/32, 1024)`` ->
    GAP ``(batch, 1024)`` -> softmax ``(batch, num_classes)``. At 224 px with the base frozen
    (``train_base=False``): 5,125 trainable and 3,228,864 non-trainable parameters (paper Table 2).
    ``features`` maps images to the pooled 1024-d vector (GAP has no weights, so it is part of the
    fixed function); ``head`` is the Dense layer. With ``train_base=True`` the whole network is
    trained (``features``/``head`` are then ``None``: nothing to cache).
    """
    base = _application("mobilenet", input_size, None if weights is None else str(weights))
    base.trainable = train_base
    gap = layers.GlobalAveragePooling2D(name="avg_pool")
    top = _dense_head([], 0.0, num_classes)
    inp = keras.Input((input_size, input_size, 3), name="image")
    model = keras.Model(inp, _apply(top, gap(base(inp))), name="mobilenet_transfer")
    features = head = None
    if not train_base:
        features = keras.Model(inp, gap(base(inp)), name="mobilenet_features")
        f_in = keras.Input((base.output.shape[-1],), name="features")
        head = keras.Model(f_in, _apply(top, f_in), name="mobilenet_head")
    return TransferModel("MobileNet", model, features, head, keras.applications.mobilenet.preprocess_input,
                         input_size, None if weights is None else str(weights), not train_base)


# The trainable tail of ResNet50 ("all frozen but the last 4 layers"): the last 4 layers of the
# no-top application model are conv5_block3_3_conv, conv5_block3_3_bn, conv5_block3_add and
# conv5_block3_out; their inputs are conv5_block3_2_relu (main path) and conv5_block2_out (shortcut).
RESNET_TAIL = ("conv5_block3_3_conv", "conv5_block3_3_bn", "conv5_block3_add", "conv5_block3_out")
RESNET_TAIL_INPUTS = ("conv5_block3_2_relu", "conv5_block2_out")


def build_resnet50(
    input_size: int = 256,
    num_classes: int = 5,
    weights: str | os.PathLike | None = "imagenet",
    head: str | Sequence[int] = "1024-1024",
    dropout: float = 0.05,
    train_last: int = 4,
    train_base: bool = False,
) -> TransferModel:
    """ResNet50 with its last ``train_last`` layers trainable + GAP + a dense head.

    ``(batch, s, s, 3)`` preprocessed images -> ResNet50 base ``(batch, s/32, s/32, 2048)`` -> GAP
    ``(batch, 2048)`` -> [Dense(w, relu), Dropout(dropout)] for each width in ``head`` ->
    softmax ``(batch, num_classes)``. "All frozen but the last 4 layers" counts the layers of the
    no-top application model (:data:`RESNET_TAIL`: the last 1x1 conv of conv5_block3, its
    BatchNorm, the residual add and the ReLU). At 256 px with the paper's head ``"1024-1024"``
    and dropout 0.05: 4,207,621 trainable and 22,532,992 non-trainable parameters (Table 5).

    ``features`` maps images to the two inputs of the tail, ``[(batch, s/32, s/32, 512),
    (batch, s/32, s/32, 2048)]`` (main path, shortcut); ``head`` is tail + GAP + dense head.
    ``train_base=True`` trains the whole network (``features``/``head`` are then ``None``).
    """
    widths = parse_head(head)
    base = _application("resnet50", input_size, None if weights is None else str(weights))
    if train_base:
        base.trainable = True
    else:
        if train_last != 4:
            raise ValueError("only train_last=4 (the paper's split) has a cached-feature head")
        for layer in base.layers[:-train_last]:
            layer.trainable = False
        for layer in base.layers[-train_last:]:
            layer.trainable = True
        assert tuple(l.name for l in base.layers[-4:]) == RESNET_TAIL, [l.name for l in base.layers[-4:]]
    gap = layers.GlobalAveragePooling2D(name="avg_pool")
    top = _dense_head(widths, dropout, num_classes)
    inp = keras.Input((input_size, input_size, 3), name="image")
    name = f"resnet50_{'-'.join(map(str, widths)) or 'linear'}"
    model = keras.Model(inp, _apply(top, gap(base(inp))), name=name)
    features = head_model = None
    if not train_base:
        main, short = (base.get_layer(n).output for n in RESNET_TAIL_INPUTS)
        features = keras.Model(base.input, [main, short], name=f"{name}_features")
        m_in = keras.Input(main.shape[1:], name="main_path")
        s_in = keras.Input(short.shape[1:], name="shortcut")
        conv, bn, add, relu = (base.get_layer(n) for n in RESNET_TAIL)
        h = relu(add([s_in, bn(conv(m_in))]))
        head_model = keras.Model([m_in, s_in], _apply(top, gap(h)), name=f"{name}_head")
    return TransferModel("ResNet50", model, features, head_model, keras.applications.resnet50.preprocess_input,
                         input_size, None if weights is None else str(weights), not train_base,
                         info={"head": widths, "dropout": dropout})


def extract_features(tm: TransferModel, images: np.ndarray, batch_size: int = 64,
                     dtype=np.float32) -> np.ndarray | list[np.ndarray]:
    """Run the frozen part once over ``images`` (uint8/float RGB 0..255 at the input size).

    Returns the head's input: an array ``(n, ...)`` or a list of arrays (ResNet50: main path and
    shortcut). Preprocessing is applied here, batch by batch, so memory stays at one batch of
    float images.
    """
    if tm.features is None:
        raise ValueError(f"{tm.name} trains its whole network: there is no frozen part to cache")
    outs: list[list[np.ndarray]] = []
    for start in range(0, len(images), batch_size):
        x = tm.preprocess(np.array(images[start : start + batch_size], dtype=np.float32))
        y = tm.features(x, training=False)
        y = y if isinstance(y, (list, tuple)) else [y]
        outs.append([np.asarray(t, dtype=dtype) for t in y])
    cat = [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]
    return cat if len(cat) > 1 else cat[0]
