"""Grad-CAM class-activation maps (Selvaraju et al. 2017) for functional Keras classifiers."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import matplotlib.pyplot as plt
import numpy as np


def grad_cam(model: keras.Model, images: np.ndarray, class_index: int | Sequence[int] | None = None,
             layer_name: str = "last_conv", method: str = "gradcam") -> np.ndarray:
    """Grad-CAM heat maps ``(n, h, w)`` in [0, 1] at the input's resolution.

    ``images`` ``(n, h, w, c)`` as the model takes them. For each image, the gradient of the
    chosen class score (the pre-softmax logit when the last layer is a softmax ``Dense``, as in
    the Grad-CAM paper, so a confident prediction does not make the gradient vanish) (``class_index``: one class for all, one per image, or ``None`` = the
    predicted class) with respect to the feature maps of ``layer_name`` is averaged over space
    to weight the maps; the ReLU of the weighted sum, upsampled bilinearly and divided by its
    maximum, is the map (all zeros where no location supports the class).

    ``method="hirescam"`` (Draelos & Carin 2020) multiplies gradients and feature maps element by
    element before summing over channels, without the spatial average. For a ``Flatten -> Dense``
    head (as in :func:`imgclf.models.cnns.build_plain_cnn`) the gradient differs per location, and
    Grad-CAM's average can cancel to an all-negative map; HiResCAM then still shows the locations
    that raise the class score.
    """
    if method not in ("gradcam", "hirescam"):
        raise ValueError(f"method must be 'gradcam' or 'hirescam', got {method!r}")
    import tensorflow as tf

    conv = model.get_layer(layer_name)
    last = model.layers[-1]
    softmax_dense = isinstance(last, keras.layers.Dense) and last.activation is keras.activations.softmax
    probe = keras.Model(model.inputs, [conv.output, last.input if softmax_dense else model.output])
    x = tf.convert_to_tensor(np.asarray(images, np.float32))
    with tf.GradientTape() as tape:
        fmap, head = probe(x, training=False)
        probs = tf.matmul(head, last.kernel) + last.bias if softmax_dense else head
        if class_index is None:
            cls = tf.argmax(probs, axis=1)
        else:
            cls = tf.broadcast_to(tf.constant(class_index, tf.int64), [x.shape[0]])
        score = tf.gather(probs, cls, axis=1, batch_dims=1)
    grads = tape.gradient(score, fmap)
    weights = grads if method == "hirescam" else tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * fmap, axis=-1))[..., None]
    cam = tf.image.resize(cam, x.shape[1:3], method="bilinear")[..., 0].numpy()
    peak = cam.reshape(len(cam), -1).max(axis=1)
    return np.where(peak[:, None, None] > 0, cam / np.maximum(peak, 1e-12)[:, None, None], 0.0).astype(np.float32)


def overlay_grid(images: np.ndarray, cams: np.ndarray, titles: Sequence[str] | None = None, ncols: int = 4,
                 alpha: float = 0.45, size: float = 2.4, suptitle: str = "", label: str = "heat map"):
    """Each image in gray with its heat map (``jet``) over it; image and overlay side by side."""
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, 2 * ncols, figsize=(size * 2 * ncols, size * nrows * 1.1), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        r, c = divmod(i, ncols)
        img = np.asarray(images[i], np.float32).squeeze()
        axes[r, 2 * c].imshow(img, cmap="gray")
        axes[r, 2 * c + 1].imshow(img, cmap="gray")
        axes[r, 2 * c + 1].imshow(cams[i], cmap="jet", alpha=alpha, vmin=0, vmax=1)
        if titles is not None:
            axes[r, 2 * c].set_title(titles[i], fontsize=8)
            axes[r, 2 * c + 1].set_title(label, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
