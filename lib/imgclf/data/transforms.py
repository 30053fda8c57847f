"""Noise and subsets."""

from __future__ import annotations

import numpy as np


# ------------------------------------------------------------------------------------------
# Corruption and subsetting
# ------------------------------------------------------------------------------------------
def add_noise(
    x: np.ndarray, fraction: float, seed: int | np.random.Generator = 0, low: float = 0.0, high: float = 1.0
) -> np.ndarray:
    """Replace exactly ``round(fraction * n_pixels)`` pixels of every image by uniform noise.

    "x% noise" means: in each image, x% of the pixel positions (chosen uniformly at random,
    without replacement) are overwritten with values drawn from U[low, high) (the pixel range,
    [0, 1] for scaled images). The other pixels are unchanged. Returns a float32 copy of ``x``.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"noise fraction must be in [0, 1], got {fraction!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    out = np.array(x, dtype=np.float32, copy=True)
    flat = out.reshape(len(out), -1)
    n_pix = flat.shape[1]
    k = int(round(fraction * n_pix))
    if k == 0:
        return out
    for start in range(0, len(flat), 4096):  # chunks keep memory flat for 60k images
        block = flat[start : start + 4096]
        pos = np.argpartition(rng.random(block.shape), k - 1, axis=1)[:, :k] if k < n_pix else (
            np.tile(np.arange(n_pix), (len(block), 1))
        )
        vals = rng.uniform(low, high, size=pos.shape).astype(np.float32)
        np.put_along_axis(block, pos, vals, axis=1)
    return out


def stratified_subset(
    x: np.ndarray, y: np.ndarray, n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples of ``(x, y)`` with the class proportions kept (all of them if ``n >= len``)."""
    if n >= len(y):
        return x, y
    from sklearn.model_selection import train_test_split

    xs, _, ys, _ = train_test_split(x, y, train_size=n, stratify=y, random_state=seed)
    return xs, ys
