"""Near-duplicate groups (exact hashes plus a rotation/flip-tolerant thumbnail signature) and group-aware splits."""

from __future__ import annotations

import numpy as np


def dihedral_variants(images: np.ndarray) -> np.ndarray:
    """The 8 rotations/flips of square images ``(n, s, s)`` -> ``(8, n, s, s)``."""
    out = []
    for flip in (False, True):
        base = images[:, :, ::-1] if flip else images
        for k in range(4):
            out.append(np.rot90(base, k, axes=(1, 2)))
    return np.stack(out)


class _UnionFind:
    def __init__(self, n: int):
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        p = self.parent
        root = i
        while p[root] != root:
            root = p[root]
        while p[i] != root:  # path compression
            p[i], i = root, p[i]
        return root

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)

    def labels(self) -> np.ndarray:
        roots = np.array([self.find(i) for i in range(len(self.parent))])
        return np.unique(roots, return_inverse=True)[1]


def signature_variants(images: np.ndarray, angles=(0,), crop: float = 1.0, side: int = 16) -> np.ndarray:
    """Normalised thumbnail signatures of every rotation/flip: float32 ``(8 * len(angles), n, side * side)``.

    ``images`` uint8 ``(n, s, s)`` or ``(n, s, s, 1)`` (e.g. 32x32 grayscale from :func:`load_images`).
    For each small rotation angle (degrees, PIL bilinear about the centre), the central ``crop``
    fraction is cut out (so the black corners of rotated copies fall away) and resized to
    ``side`` x ``side``; then the 8 rotations/flips of that (:func:`dihedral_variants`). Each
    signature has zero mean and unit norm, so a dot product is a Pearson correlation. Entry 0 is
    the unrotated, unflipped signature.
    """
    from PIL import Image

    x = np.asarray(images)
    if x.ndim == 4:
        x = x[..., 0]
    x = x.astype(np.uint8)
    n, s = len(x), x.shape[1]
    c0 = int(round(s * (1 - crop) / 2))
    box = (c0, c0, s - c0, s - c0)
    out = []
    for angle in angles:
        sig = np.empty((n, side, side), np.float32)
        for i, im in enumerate(x):
            p = Image.fromarray(im)
            if angle:
                p = p.rotate(angle, Image.BILINEAR)
            p = p.crop(box)
            if p.size != (side, side):
                p = p.resize((side, side), Image.BILINEAR, reducing_gap=2.0)
            sig[i] = np.asarray(p, np.float32)
        out.append(dihedral_variants(sig))
    v = np.concatenate(out).reshape(-1, n, side * side)
    v -= v.mean(axis=2, keepdims=True)
    v /= np.maximum(np.linalg.norm(v, axis=2, keepdims=True), 1e-6)
    return v


def thumbnail_similarity(images: np.ndarray, angles=(0,), crop: float = 1.0, side: int = 16, block: int = 256):
    """Rotation/flip-tolerant similarity of images, block by block.

    The score of images i and j is the Pearson correlation of i's signature with j's, maximised
    over the 8 rotations/flips of j and the small rotation ``angles`` (:func:`signature_variants`).
    With ``angles=(0,)`` and ``crop=1`` it is symmetric and exactly invariant to 90-degree
    rotations and flips of either image. Yields ``(rows, scores)``: row indices and float32
    scores ``(len(rows), n)``, computed as matrix products (thousands of images: seconds).
    """
    v = signature_variants(images, angles, crop, side)
    k, n, d = v.shape
    ref, flat = v[0], v.reshape(k * n, d)
    for start in range(0, n, block):
        rows = np.arange(start, min(n, start + block))
        yield rows, (ref[rows] @ flat.T).reshape(len(rows), k, n).max(axis=1)


def duplicate_groups(images: np.ndarray, sha256s=None, threshold: float = 0.97, angles=(0,), crop: float = 1.0,
                     side: int = 16) -> np.ndarray:
    """Group exact and near-duplicate images; returns int64 group ids ``(n,)`` numbered 0..g-1.

    Two images are joined when their file contents are identical (same ``sha256s`` entry) or
    their signatures correlate at ``threshold`` or more in some rotation/flip
    (:func:`thumbnail_similarity`; ``images`` e.g. 16x16 or 32x32 grayscale from
    :func:`load_images`). Groups are the connected components of these links (union-find), so a
    family of rotated and flipped copies lands in one group. Flat (constant) images only join
    exact copies.
    """
    images = np.asarray(images)
    n = len(images)
    uf = _UnionFind(n)
    if sha256s is not None:
        first: dict[str, int] = {}
        for i, h in enumerate(sha256s):
            if h in first:
                uf.union(first[h], i)
            else:
                first[h] = i
    varying = np.asarray(images, np.float32).reshape(n, -1).std(axis=1) > 1e-3
    for rows, scores in thumbnail_similarity(images, angles, crop, side):
        ii, jj = np.nonzero(scores >= threshold)
        for i, j in zip(rows[ii], jj):
            if i != j and varying[i] and varying[j]:
                uf.union(int(i), int(j))
    return uf.labels().astype(np.int64)


def group_split(y, groups, test_size: float = 0.2, val_size: float = 0.1, seed: int = 0):
    """Stratified group-disjoint train/validation/test indices (scikit-learn ``StratifiedGroupKFold``).

    The test part is one fold of ``round(1 / test_size)`` folds over all samples; the validation
    part is one fold of ``round((1 - test_size) / val_size)`` folds over the rest. No group is on
    two sides; class proportions are kept as far as the group sizes allow. Returns three sorted
    int arrays ``(train, val, test)``; ``val_size=0`` gives an empty validation array.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    y, groups = np.asarray(y), np.asarray(groups)
    if not 0 < test_size < 1 or not 0 <= val_size < 1 or test_size + val_size >= 1:
        raise ValueError(f"need 0 < test_size, 0 <= val_size, test_size + val_size < 1; got {test_size}, {val_size}")
    idx = np.arange(len(y))
    k = max(2, int(round(1 / test_size)))
    rest, test = next(StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(idx, y, groups))
    val = np.array([], dtype=int)
    if val_size > 0:
        k2 = max(2, int(round((1 - test_size) / val_size)))
        tr, va = next(StratifiedGroupKFold(k2, shuffle=True, random_state=seed + 1).split(rest, y[rest], groups[rest]))
        rest, val = rest[tr], rest[va]
    return np.sort(rest), np.sort(val), np.sort(test)


def group_kfold(y, groups, folds: int = 5, val_size: float = 0.1, seed: int = 0):
    """Stratified group-disjoint cross-validation (scikit-learn ``StratifiedGroupKFold``): every
    group is in the test part of exactly one of ``folds`` folds.

    In each fold a validation part of about ``val_size`` of all samples is taken, group-disjoint and
    stratified, from the other folds; the rest trains. Returns ``folds`` triples of sorted int arrays
    ``(train, val, test)``; ``val_size=0`` gives empty validation arrays.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    y, groups = np.asarray(y), np.asarray(groups)
    if int(folds) != folds or folds < 2:
        raise ValueError(f"need at least 2 folds, got {folds}")
    if not 0 <= val_size < 1 - 1 / folds:
        raise ValueError(f"need 0 <= val_size < 1 - 1/folds (the test share); got {val_size} with {folds} folds")
    idx = np.arange(len(y))
    out = []
    for k, (rest, test) in enumerate(StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(idx, y, groups)):
        val = np.array([], dtype=int)
        if val_size > 0:
            k2 = max(2, int(round(len(rest) / (val_size * len(y)))))
            tr, va = next(StratifiedGroupKFold(k2, shuffle=True, random_state=seed + 1 + k).split(rest, y[rest], groups[rest]))
            rest, val = rest[tr], rest[va]
        out.append((np.sort(rest), np.sort(val), np.sort(test)))
    return out


def copies_across(groups, a, b) -> np.ndarray:
    """Boolean mask over indices ``b``: True where the image's group also has a member in ``a``."""
    groups = np.asarray(groups)
    return np.isin(groups[np.asarray(b)], groups[np.asarray(a)])




def rotation_invariant_signatures(images: np.ndarray, rings: int = 8, spokes: int = 64, freqs: int = 6,
                                  radius: float = 0.45) -> np.ndarray:
    """A signature of square images that no rotation (any angle) or flip changes: the image is
    sampled on a polar grid (``rings`` radii up to ``radius`` x side, ``spokes`` angles, bilinear),
    and each ring's magnitudes of its first ``freqs`` angular Fourier coefficients are kept (a
    rotation shifts a ring cyclically, a flip reverses it: neither changes the magnitudes).
    Returns float32 ``(n, rings * freqs)`` with zero mean and unit norm per image (dot = correlation).
    """
    from scipy.ndimage import map_coordinates

    x = np.asarray(images, np.float32)
    if x.ndim == 4:
        x = x[..., 0]
    n, s = len(x), x.shape[1]
    c = (s - 1) / 2
    r = np.linspace(s * radius / rings, s * radius, rings)
    t = np.linspace(0, 2 * np.pi, spokes, endpoint=False)
    rows, cols = c + r[:, None] * np.sin(t)[None], c + r[:, None] * np.cos(t)[None]
    polar = np.stack([map_coordinates(im, [rows.ravel(), cols.ravel()], order=1).reshape(rings, spokes) for im in x])
    sig = np.abs(np.fft.rfft(polar, axis=2))[:, :, :freqs].reshape(n, -1)
    sig -= sig.mean(axis=1, keepdims=True)
    sig /= np.maximum(np.linalg.norm(sig, axis=1, keepdims=True), 1e-6)
    return sig.astype(np.float32)


def cross_split_copies(images: np.ndarray, a, b, threshold: float = 0.98, candidates: int = 10,
                       angle_step: int = 5, crop: float = 0.6, side: int = 16) -> list[tuple[int, int, float, int]]:
    """An independent check of a split: the (near-)copies that cross from ``b`` to ``a``.

    Independent of :func:`duplicate_groups`: for every image of ``b`` the ``candidates`` images of
    ``a`` nearest by :func:`rotation_invariant_signatures` are verified by an exhaustive rotation
    search over the full circle (every ``angle_step`` degrees, both flips; central ``crop``,
    ``side`` x ``side`` thumbnails). Returns ``(i in b, j in a, correlation, angle)`` for every pair
    at ``threshold`` or more (indices into ``images``). ``images`` e.g. 32x32 grayscale uint8.
    """
    from PIL import Image

    x = np.asarray(images)
    if x.ndim == 4:
        x = x[..., 0]
    x = x.astype(np.uint8)
    a, b = np.asarray(a), np.asarray(b)
    ri = rotation_invariant_signatures(x)
    sims = ri[b] @ ri[a].T
    top = np.argsort(-sims, axis=1)[:, :candidates]
    s = x.shape[1]
    c0 = int(round(s * (1 - crop) / 2))
    box = (c0, c0, s - c0, s - c0)

    def thumb(im: Image.Image) -> np.ndarray:
        v = np.asarray(im.crop(box).resize((side, side), Image.BILINEAR), np.float32).ravel()
        v = v - v.mean()
        return v / max(float(np.linalg.norm(v)), 1e-6)

    ref = {int(j): thumb(Image.fromarray(x[j])) for j in np.unique(a[top])}
    angles = list(range(0, 360, angle_step))
    out = []
    for row, i in enumerate(b):
        if x[i].std() < 1e-3:
            continue
        p = Image.fromarray(x[i])
        variants = np.stack([thumb(q.rotate(ang, Image.BILINEAR)) for q in (p, p.transpose(Image.FLIP_LEFT_RIGHT))
                             for ang in angles])
        for j in a[top[row]]:
            if x[j].std() < 1e-3:
                continue
            sc = variants @ ref[int(j)]
            k = int(np.argmax(sc))
            if sc[k] >= threshold:
                out.append((int(i), int(j), float(sc[k]), angles[k % len(angles)]))
    return out
