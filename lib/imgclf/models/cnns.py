"""Convolutional classifiers."""

from __future__ import annotations

import keras
from keras import layers


def build_spectra_cnn(input_shape: tuple[int, int], num_classes: int, filters: tuple[int, int] = (16, 32),
                      dense: int = 128) -> keras.Model:
    """1-D CNN over (compressed) densitograms.

    ``(batch, length, channels) -> Conv1D/ReLU/MaxPool x2 -> Dense(dense) -> softmax (batch, num_classes)``.
    """
    inputs = keras.Input(shape=input_shape)
    h = inputs
    for i, f in enumerate(filters):
        h = layers.Conv1D(f, 5, padding="same", activation="relu", name=f"conv{i}")(h)
        h = layers.MaxPooling1D(2, name=f"pool{i}")(h)
    h = layers.Flatten()(h)
    h = layers.Dense(dense, activation="relu", name="dense")(h)
    h = layers.Dropout(0.3)(h)
    outputs = layers.Dense(num_classes, activation="softmax", name="out")(h)
    return keras.Model(inputs, outputs, name="spectra_cnn")


def build_plain_cnn(input_shape: tuple[int, int, int], num_classes: int = 2, filters: tuple[int, ...] = (32, 64, 128),
                    dense: int = 128, dropout: float = 0.5, name: str = "plain_cnn") -> keras.Model:
    """The plain CNN of paper 2 (Tarasenko et al.): conv/ReLU/max-pool stacks, a dense head, softmax.

    ``(batch, h, w, c)`` uint8 or float pixels in 0..255 -> ``Rescaling(1/255)`` ->
    ``[Conv2D(f, 3, same, ReLU) -> MaxPool(2)]`` for each ``f`` in ``filters`` (the last conv layer
    is named ``last_conv`` for Grad-CAM) -> ``Flatten -> Dense(dense, ReLU) -> Dropout(dropout) ->
    Dense(num_classes, softmax)`` = ``(batch, num_classes)``. Each pooling halves the side, so
    ``h`` and ``w`` must be at least ``2 ** len(filters)``.
    """
    if min(input_shape[:2]) < 2 ** len(filters):
        raise ValueError(f"input {input_shape[:2]} is too small for {len(filters)} poolings (need >= {2 ** len(filters)})")
    inputs = keras.Input(shape=input_shape, name="image")
    h = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    for i, f in enumerate(filters):
        last = i == len(filters) - 1
        h = layers.Conv2D(f, 3, padding="same", activation="relu", name="last_conv" if last else f"conv{i}")(h)
        h = layers.MaxPooling2D(2, name=f"pool{i}")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(dense, activation="relu", name="dense")(h)
    h = layers.Dropout(dropout, name="dropout")(h)
    outputs = layers.Dense(num_classes, activation="softmax", name="out")(h)
    return keras.Model(inputs, outputs, name=name)


def build_small_resnet(input_shape: tuple[int, int, int], num_classes: int = 2, widths: tuple[int, ...] = (16, 32, 64),
                       augment: bool = True, seed: int = 0, name: str = "small_resnet") -> keras.Model:
    """A small residual CNN trained from scratch, with augmentation (paper 2's extra row).

    Shapes, for ``input_shape = (h, w, c)``:

    - ``(batch, h, w, c)`` pixels 0..255
    - [training only] random horizontal flip, rotation +-10 %, zoom +-10 %, translation +-10 %
    - ``Rescaling(1/255)``; 5x5 stride-2 stem + BN + ReLU + max-pool 2: ``(batch, h/4, w/4, widths[0])``
    - one residual block per width (two 3x3 conv + BN; identity or 1x1 projection shortcut), the
      later ones with stride 2: ``(batch, h/4/2**(k-1), w/4/2**(k-1), widths[-1])`` for ``k`` widths;
      the last block's output is named ``last_conv`` (Grad-CAM)
    - global average pooling ``(batch, widths[-1])``, dropout 0.3, softmax ``(batch, num_classes)``.
    """
    inp = keras.Input(shape=input_shape, name="image")
    h = inp
    if augment:  # random layers are identities at inference: the test images are never augmented
        h = layers.RandomFlip("horizontal", seed=seed, name="aug_flip")(h)
        h = layers.RandomRotation(0.1, fill_mode="constant", seed=seed + 1, name="aug_rotate")(h)
        h = layers.RandomZoom(0.1, fill_mode="constant", seed=seed + 2, name="aug_zoom")(h)
        h = layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed + 3, name="aug_shift")(h)
    h = layers.Rescaling(1.0 / 255, name="scale")(h)
    h = layers.Conv2D(widths[0], 5, strides=2, padding="same", use_bias=False, name="stem")(h)
    h = layers.ReLU()(layers.BatchNormalization()(h))
    h = layers.MaxPooling2D(2)(h)
    for i, w in enumerate(widths):
        stride = 1 if i == 0 else 2
        y = layers.Conv2D(w, 3, strides=stride, padding="same", use_bias=False)(h)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.Conv2D(w, 3, padding="same", use_bias=False)(y)
        y = layers.BatchNormalization()(y)
        if stride != 1 or h.shape[-1] != w:
            h = layers.BatchNormalization()(layers.Conv2D(w, 1, strides=stride, use_bias=False)(h))
        h = layers.ReLU(name="last_conv" if i == len(widths) - 1 else None)(layers.Add()([h, y]))
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Dropout(0.3)(h)
    return keras.Model(inp, layers.Dense(num_classes, activation="softmax", name="out")(h), name=name)


# ============================================================================================
# Paper 3 (Asif): VGG-16, GoogLeNet (Inception v1) and ResNet-18, and their MNIST wrapper.
#
# Each architecture is a function ``_<arch>(x, num_classes, **options) -> [outputs]`` on a
# Keras tensor, so the public builders (``build_vgg16``, ``build_googlenet``, ``build_resnet18``)
# and the MNIST wrapper (``build_mnist_classifier``, which resizes inside the model) share one
# definition and give flat models whose layers keep their names. Initialisation follows the
# PyTorch/torchvision models the paper used: VGG-16 and ResNet-18 He-normal (fan-out) convolutions,
# VGG's dense layers N(0, 0.01); GoogLeNet every convolution and dense kernel truncated normal
# with std 0.01 cut at 2 std (torchvision's GoogLeNet._initialize_weights: scipy
# truncnorm(-2, 2, scale=0.01) before torchvision 0.13, trunc_normal_(std=0.01, a=-2, b=2) since);
# batch-norm gamma 1, beta 0, momentum 0.9 = PyTorch's 0.1. Differences left: dense biases start at
# 0 (PyTorch: uniform +-1/sqrt(fan_in)); ResNet-18's last dense layer is Glorot-uniform (PyTorch:
# its default uniform). Every classifier ends in a dense
# layer of logits and a float32 softmax, so the models also run under ``mixed_float16``.
# ============================================================================================
def _he() -> keras.initializers.Initializer:
    # A new instance per layer: a Keras initializer instance draws its seed once, when created,
    # so a shared one would give every kernel of the same shape the same values (and a module-level
    # one a seed from before keras.utils.set_random_seed).
    return keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")


def _normal_001() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(0.0, 0.01)


def _trunc_normal_001() -> keras.initializers.Initializer:
    """torchvision GoogLeNet's conv and linear weights: N(0, 0.01) redrawn beyond 2 std."""
    return keras.initializers.TruncatedNormal(0.0, 0.01)

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # of the 60k training pixels in [0, 1]


def _softmax_head(h, num_classes: int, name: str, **dense_kw):
    logits = layers.Dense(num_classes, name=f"{name}_logits", **dense_kw)(h)
    return layers.Activation("softmax", dtype="float32", name=name)(logits)


def _check_size(x, minimum: int, arch: str) -> None:
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None or min(h, w) < minimum:
        raise ValueError(f"{arch} needs images of at least {minimum}x{minimum} pixels, got {h}x{w}")


# -- VGG-16 ----------------------------------------------------------------------------------
VGG16_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def _vgg16(x, num_classes: int, dropout: float = 0.5):
    _check_size(x, 32, "VGG-16")
    h = x
    for b, (n, f) in enumerate(VGG16_BLOCKS, 1):
        for i in range(1, n + 1):
            h = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"block{b}_conv{i}",
                              kernel_initializer=_he())(h)
        h = layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(h)
    h = layers.Flatten(name="flatten")(h)
    for i in (1, 2):
        h = layers.Dense(4096, activation="relu", name=f"fc{i}", kernel_initializer=_normal_001())(h)
        h = layers.Dropout(dropout, name=f"fc{i}_dropout")(h)
    return [_softmax_head(h, num_classes, "predictions", kernel_initializer=_normal_001())]


def build_vgg16(input_shape=(224, 224, 3), num_classes: int = 1000, dropout: float = 0.5) -> keras.Model:
    """VGG-16 (configuration D of Simonyan & Zisserman): 13 conv 3x3 + 3 dense layers.

    ``(batch, H, W, C)`` with H, W >= 32 -> five blocks of 3x3 convolutions (64, 128, 256, 512,
    512 filters; 2, 2, 3, 3, 3 layers; ReLU; 'same' padding) each closed by 2x2/2 max pooling ->
    ``(batch, H/32, W/32, 512)`` -> flatten -> Dense 4096 -> dropout -> Dense 4096 -> dropout ->
    softmax ``(batch, num_classes)``. At 224x224x3 with 1000 classes: 138,357,544 parameters (the
    published 138M). At other sizes the first dense layer sees (H/32)(W/32)512 features.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    return keras.Model(inputs, _vgg16(inputs, num_classes, dropout)[0], name="vgg16")


# -- GoogLeNet / Inception v1 ----------------------------------------------------------------
# (name, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj): Table 1 of Szegedy et al. (2015)
INCEPTION_V1 = (
    ("3a", 64, 96, 128, 16, 32, 32), ("3b", 128, 128, 192, 32, 96, 64), "pool",
    ("4a", 192, 96, 208, 16, 48, 64), ("4b", 160, 112, 224, 24, 64, 64), ("4c", 128, 128, 256, 24, 64, 64),
    ("4d", 112, 144, 288, 32, 64, 64), ("4e", 256, 160, 320, 32, 128, 128), "pool",
    ("5a", 256, 160, 320, 32, 128, 128), ("5b", 384, 192, 384, 48, 128, 128),
)


def _conv_bn_relu(x, filters: int, kernel: int, name: str, strides: int = 1, batch_norm: bool = True):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=not batch_norm, name=name,
                      kernel_initializer=_trunc_normal_001())(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-3, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _inception(x, spec, batch_norm: bool):
    name, c1, c3r, c3, c5r, c5, pp = spec
    p = f"inception{name}"
    b1 = _conv_bn_relu(x, c1, 1, f"{p}_1x1", batch_norm=batch_norm)
    b2 = _conv_bn_relu(_conv_bn_relu(x, c3r, 1, f"{p}_3x3_reduce", batch_norm=batch_norm), c3, 3, f"{p}_3x3",
                       batch_norm=batch_norm)
    b3 = _conv_bn_relu(_conv_bn_relu(x, c5r, 1, f"{p}_5x5_reduce", batch_norm=batch_norm), c5, 5, f"{p}_5x5",
                       batch_norm=batch_norm)
    b4 = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{p}_pool")(x)
    b4 = _conv_bn_relu(b4, pp, 1, f"{p}_pool_proj", batch_norm=batch_norm)
    return layers.Concatenate(name=f"{p}_concat")([b1, b2, b3, b4])


class AdaptiveAveragePooling2D(layers.Layer):
    """Average pooling to a fixed ``size`` x ``size`` grid whatever the (static) input size.

    Cell ``(i, j)`` averages rows ``floor(i H / size) .. ceil((i + 1) H / size)`` and the same
    columns: PyTorch's ``AdaptiveAvgPool2d``. Maps smaller than the grid are replicated.
    """

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def call(self, x):
        n, (height, width) = self.size, x.shape[1:3]
        span = lambda i, m: (i * m // n, -(-(i + 1) * m // n))  # noqa: E731
        rows = []
        for i in range(n):
            r0, r1 = span(i, height)
            cells = [keras.ops.mean(x[:, r0:r1, slice(*span(j, width)), :], axis=(1, 2), keepdims=True)
                     for j in range(n)]
            rows.append(keras.ops.concatenate(cells, axis=2))
        return keras.ops.concatenate(rows, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def _aux_head(x, num_classes: int, name: str, batch_norm: bool, dropout: float = 0.7):
    # The paper's 5x5/3 average pooling turns the 14x14 maps of a 224 px input into 4x4; at other
    # sizes the maps are pooled adaptively to 4x4 (as torchvision does), so the head is the same.
    if x.shape[1] == 14 and x.shape[2] == 14:
        h = layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    else:
        h = AdaptiveAveragePooling2D(4, name=f"{name}_pool")(x)
    h = _conv_bn_relu(h, 128, 1, f"{name}_conv", batch_norm=batch_norm)
    h = layers.Flatten(name=f"{name}_flatten")(h)
    h = layers.Dense(1024, activation="relu", name=f"{name}_fc", kernel_initializer=_trunc_normal_001())(h)
    h = layers.Dropout(dropout, name=f"{name}_dropout")(h)
    return _softmax_head(h, num_classes, name, kernel_initializer=_trunc_normal_001())


def _googlenet(x, num_classes: int, aux_logits: bool = False, batch_norm: bool = True, dropout: float = 0.4,
               aux_dropout: float = 0.7):
    _check_size(x, 32, "GoogLeNet")
    h = _conv_bn_relu(x, 64, 7, "conv1_7x7", strides=2, batch_norm=batch_norm)
    h = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(h)
    h = _conv_bn_relu(h, 64, 1, "conv2_reduce", batch_norm=batch_norm)
    h = _conv_bn_relu(h, 192, 3, "conv2_3x3", batch_norm=batch_norm)
    h = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(h)
    aux, pools = [], 2
    for spec in INCEPTION_V1:
        if spec == "pool":
            pools += 1
            h = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{pools}")(h)
            continue
        h = _inception(h, spec, batch_norm)
        if aux_logits and spec[0] in ("4a", "4d"):
            aux.append(_aux_head(h, num_classes, f"aux{len(aux) + 1}", batch_norm, aux_dropout))
    h = layers.GlobalAveragePooling2D(name="avg_pool")(h)
    h = layers.Dropout(dropout, name="dropout")(h)
    return [_softmax_head(h, num_classes, "predictions", kernel_initializer=_trunc_normal_001()), *aux]


def build_googlenet(input_shape=(224, 224, 3), num_classes: int = 1000, aux_logits: bool = False,
                    batch_norm: bool = True, dropout: float = 0.4, aux_dropout: float = 0.7) -> keras.Model:
    """GoogLeNet (Inception v1, Szegedy et al. 2015): 7x7/2 stem, nine inception modules.

    ``(batch, H, W, C)`` with H, W >= 32 -> conv 7x7/2 (64) -> max pool 3x3/2 -> conv 1x1 (64)
    -> conv 3x3 (192) -> max pool 3x3/2 -> inception 3a, 3b -> max pool -> 4a..4e -> max pool ->
    5a, 5b ``(batch, H/32, W/32, 1024)`` -> global average pooling (7x7 at 224) -> dropout 0.4 ->
    softmax ``(batch, num_classes)``. Each module concatenates 1x1, 1x1->3x3, 1x1->5x5 and
    3x3 max pool->1x1 branches (widths of the paper's Table 1).

    ``aux_logits=True`` adds the two auxiliary classifiers on 4a and 4d (pool to 4x4 -> 1x1 conv
    128 -> Dense 1024 -> dropout 0.7 -> softmax) as outputs ``aux1`` and ``aux2``: the model then
    returns ``[predictions, aux1, aux2]`` and is the *training* model (losses weighted 1, 0.3,
    0.3: :data:`GOOGLENET_LOSS_WEIGHTS`); :func:`inference_model` gives the single-output model
    that shares its weights and is used for evaluation and prediction.

    ``batch_norm=True`` puts batch normalisation after every convolution (as torchvision's
    GoogLeNet, the PyTorch model the paper most likely used; the 2014 network had local response
    normalisation instead, which is omitted). At 224x224x3 with 1000 classes and no auxiliary
    heads: 6,998,552 weights without batch norm (the Caffe reference model's count, 7.0M);
    7,005,832 trainable weights (+ 14,560 moving statistics) with it. Torchvision's GoogLeNet,
    which uses 3x3 instead of 5x5 in the "5x5" branch, has 6.6M. With the auxiliary heads the
    training model has about 6.4M more weights (3.2M per head at 1000 classes).
    """
    inputs = keras.Input(shape=input_shape, name="image")
    outs = _googlenet(inputs, num_classes, aux_logits, batch_norm, dropout, aux_dropout)
    return keras.Model(inputs, outs if aux_logits else outs[0], name="googlenet")


GOOGLENET_LOSS_WEIGHTS = {"predictions": 1.0, "aux1": 0.3, "aux2": 0.3}


# -- ResNet-18 -------------------------------------------------------------------------------
def _bn(x, name: str):
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)(x)


def _basic_block(x, filters: int, strides: int, name: str):
    h = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv1",
                      kernel_initializer=_he())(x)
    h = layers.Activation("relu", name=f"{name}_relu1")(_bn(h, f"{name}_bn1"))
    h = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2",
                      kernel_initializer=_he())(h)
    h = _bn(h, f"{name}_bn2")
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:  # projection shortcut (option B of He et al.)
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_proj",
                                 kernel_initializer=_he())(x)
        shortcut = _bn(shortcut, f"{name}_proj_bn")
    return layers.Activation("relu", name=f"{name}_out")(layers.Add(name=f"{name}_add")([h, shortcut]))


def _resnet18(x, num_classes: int, blocks=(2, 2, 2, 2)):
    _check_size(x, 32, "ResNet-18")
    h = layers.Conv2D(64, 7, strides=2, padding="same", use_bias=False, name="conv1", kernel_initializer=_he())(x)
    h = layers.Activation("relu", name="conv1_relu")(_bn(h, "conv1_bn"))
    h = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(h)
    for stage, (n, filters) in enumerate(zip(blocks, (64, 128, 256, 512)), 1):
        for i in range(n):
            strides = 2 if stage > 1 and i == 0 else 1
            h = _basic_block(h, filters, strides, f"layer{stage}_block{i + 1}")
    h = layers.GlobalAveragePooling2D(name="avg_pool")(h)
    return [_softmax_head(h, num_classes, "predictions")]


def build_resnet18(input_shape=(224, 224, 3), num_classes: int = 1000) -> keras.Model:
    """ResNet-18 (He et al. 2016), torchvision layout.

    ``(batch, H, W, C)`` with H, W >= 32 -> conv 7x7/2 (64) -> BN -> ReLU -> max pool 3x3/2 ->
    four stages of two basic blocks (two 3x3 convolutions with batch norm; 64, 128, 256, 512
    filters; stages 2-4 start with stride 2 and a 1x1 projection shortcut) ``(batch, H/32,
    W/32, 512)`` -> global average pooling -> softmax ``(batch, num_classes)``. At 224x224x3 with
    1000 classes: 11,689,512 trainable weights (torchvision's count, the published 11.7M) plus
    9,600 batch-norm moving statistics.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    return keras.Model(inputs, _resnet18(inputs, num_classes)[0], name="resnet18")


# -- MNIST at any resolution -----------------------------------------------------------------
ARCHITECTURES = {"vgg16": _vgg16, "googlenet": _googlenet, "resnet18": _resnet18}
ARCH_NAMES = {"vgg16": "VGG-16", "googlenet": "GoogLeNet", "resnet18": "ResNet-18"}


def build_mnist_classifier(arch: str, image_size: int = 224, num_classes: int = 10, input_shape=(28, 28, 1),
                           **options) -> keras.Model:
    """``arch`` ("vgg16", "googlenet", "resnet18") for small greyscale images, resized inside the model.

    ``(batch, 28, 28, 1)`` pixel values in 0..255 -> standardise with MNIST's mean and std ->
    bilinear resize to ``(batch, image_size, image_size, 1)`` -> replicate to 3 channels ->
    the architecture -> softmax ``(batch, num_classes)``. The preprocessing is part of the
    graph, so on a GPU the device does it and the input pipeline only moves 28x28 images.
    ``options`` go to the architecture (e.g. ``aux_logits=True`` for GoogLeNet's training model,
    which then returns ``[predictions, aux1, aux2]``).
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    inputs = keras.Input(shape=input_shape, name="image")
    outs = ARCHITECTURES[arch](_mnist_preprocess(inputs, image_size), num_classes, **options)
    return keras.Model(inputs, outs if len(outs) > 1 else outs[0], name=f"{arch}_{image_size}px")


def _mnist_preprocess(inputs, image_size: int):
    h = layers.Rescaling(1.0 / (255.0 * MNIST_STD), offset=-MNIST_MEAN / MNIST_STD, name="standardize")(inputs)
    if tuple(inputs.shape[1:3]) != (image_size, image_size):
        h = layers.Resizing(image_size, image_size, interpolation="bilinear", name="resize")(h)
    if inputs.shape[-1] == 1:
        h = layers.Concatenate(name="to_rgb")([h, h, h])
    return h


def build_mnist_preprocessing(image_size: int = 224, input_shape=(28, 28, 1)) -> keras.Model:
    """The input stage of :func:`build_mnist_classifier` alone (to look at what the networks see).

    ``(batch, 28, 28, 1)`` in 0..255 -> ``(batch, image_size, image_size, 3)`` standardised.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    return keras.Model(inputs, _mnist_preprocess(inputs, image_size), name=f"mnist_to_{image_size}px")


def inference_model(model: keras.Model) -> keras.Model:
    """The single-output model (``predictions``) of a training model with auxiliary heads.

    It shares the layers, hence the weights, of ``model``; a single-output model is returned as is.
    """
    if len(model.outputs) == 1:
        return model
    return keras.Model(model.input, model.get_layer("predictions").output, name=f"{model.name}_inference")


def build_mnist_cnn(
    dense_units: int | None = 128,
    filters: tuple[int, ...] | list[int] = (32, 64),
    num_classes: int = 10,
    input_shape: tuple[int, int, int] = (28, 28, 1),
    pool_after_each: bool = False,
    dropout: bool = True,
) -> keras.Model:
    """The classic Keras MNIST CNN (functional).

    Input ``(batch, 28, 28, 1)`` float in [0, 1]. ``conv1`` (3x3, ``filters[0]``, ReLU, valid)
    -> ``conv2`` (3x3, ``filters[1]``, ReLU, valid) -> 2x2 max-pool -> ``(batch, 12, 12, 64)``
    -> dropout 0.25 -> flatten ``(batch, 9216)`` -> dense ``dense_units`` ReLU -> dropout 0.5 ->
    softmax ``(batch, num_classes)``. With ``dense_units=128``: 1,199,882 parameters, of which the
    conv layers hold 18,816. ``dense_units=None`` drops the hidden dense layer.

    ``pool_after_each=True`` builds the other common Keras MNIST convnet instead (a max-pool after
    *each* conv: 28 -> 26 -> 13 -> 11 -> 5, flatten 1,600), only used to explain the paper's
    parameter counts of its narrow networks.
    """
    inp = keras.Input(input_shape, name="image")
    x = layers.Conv2D(filters[0], 3, activation="relu", name="conv1")(inp)
    if pool_after_each:
        x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(filters[1], 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    if dropout:
        x = layers.Dropout(0.25, name="drop1")(x)
    x = layers.Flatten(name="features")(x)
    if dense_units:
        x = layers.Dense(dense_units, activation="relu", name="dense1")(x)
        if dropout:
            x = layers.Dropout(0.5, name="drop2")(x)
    out = layers.Dense(num_classes, activation="softmax", name="softmax")(x)
    name = f"mnist_cnn_{dense_units}" + ("_2pool" if pool_after_each else "")
    return keras.Model(inp, out, name=name)
