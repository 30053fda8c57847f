"""Every figure type the papers show. Helpers return a Matplotlib figure; save it with
:meth:`imgclf.reports.Report.figure` (PNG, written atomically under ``reports/``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

sns.set_theme(context="notebook", style="whitegrid")


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically (a killed run leaves no half file)."""
    from .files import atomic_write

    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight",
                                                    metadata={"Software": None}))


def curves(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str,
    title: str = "",
    logy: bool = False,
    marker: str = "o",
    ax=None,
):
    """Line plot of several ``label -> (x, y)`` series on one axis."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6.4, 4.2))
    for label, (x, y) in series.items():
        ax.plot(x, y, marker=marker, ms=3, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return fig


def history(hist: Mapping[str, Sequence[float]], metrics: Sequence[str] = ("accuracy", "loss"), title: str = "",
            final: Mapping[str, float] | None = None, lines: Mapping[str, float] | None = None):
    """Training and validation curves per epoch, one panel per metric (Keras history keys).

    On the first panel, ``final`` (label -> value) marks values measured after the last epoch
    (a star each) and ``lines`` (label -> value) draws reference levels (e.g. the majority class)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        n = 0
        for key, label in ((m, "train"), (f"val_{m}", "validation")):
            if key in hist:
                n = len(hist[key])
                ax.plot(np.arange(1, n + 1), hist[key], marker="o", ms=3, label=label)
        if ax is axes[0][0]:
            for label, v in (lines or {}).items():
                ax.axhline(v, ls=":", color="gray", label=label)
            for i, (label, v) in enumerate((final or {}).items()):
                ax.plot([max(n, 1)], [v], marker="*", ms=13, ls="none", color=f"C{3 + i}", label=label)
        ax.set(xlabel="epoch", ylabel=m)
        ax.legend(fontsize="small" if final or lines else None)
    if title:  # once above both panels: a long title would run into the next panel's
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def histories(hists: Mapping[str, Mapping[str, Sequence[float]]], metrics: Sequence[str] = ("accuracy", "loss"),
              title: str = ""):
    """Several runs' training (solid) and validation (dashed) curves per epoch, one panel per metric."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.6 * len(metrics), 4.0), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, m in zip(axes[0], metrics):
        for i, (label, hist) in enumerate(hists.items()):
            for key, style, part in ((m, "-", "train"), (f"val_{m}", "--", "validation")):
                if key in hist:
                    ax.plot(np.arange(1, len(hist[key]) + 1), hist[key], style, marker="o", ms=3,
                            color=colors[i % len(colors)], label=f"{label} {part}")
        ax.set(xlabel="epoch", ylabel=m, title=f"{title} {m}".strip())
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def confusion(cm: np.ndarray, names: Sequence[str], title: str = "", normalize: bool = False):
    """Confusion-matrix heat map (rows: true class, columns: predicted)."""
    cm = np.asarray(cm)
    data = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    size = max(4.0, 0.45 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    sns.heatmap(data, annot=len(names) <= 12, fmt=".2f" if normalize else "d", cmap="Blues",
                xticklabels=names, yticklabels=names, ax=ax, cbar=True)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return fig


def roc(rocs: Mapping[str, tuple[np.ndarray, np.ndarray, float]], title: str = "ROC (one vs rest)"):
    """ROC curves with their AUC in the legend."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, (fpr, tpr, auc) in rocs.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize="small")
    return fig


def image_grid(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, ncols: int = 8,
               cmap: str = "gray", size: float = 1.4, suptitle: str = ""):
    """A grid of images with optional per-image titles."""
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.1), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            img = np.asarray(images[i])
            ax.imshow(img.squeeze(), cmap=cmap if img.ndim == 2 or img.shape[-1] == 1 else None)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def overlay_grid(images: np.ndarray, cams: np.ndarray, titles: Sequence[str] | None = None, ncols: int = 4,
                 alpha: float = 0.45, size: float = 2.4, suptitle: str = "", label: str = "heat map"):
    """Each image ``(h, w[, 1])`` in gray beside itself with its heat map ``(h, w)`` in [0, 1]
    (``jet``) over it, e.g. Grad-CAM maps."""
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


def paper_vs_ours(df, value_cols: Sequence[str] = ("paper", "ours"), label_col: str | None = None,
                  title: str = "", ylabel: str = "accuracy"):
    """Grouped bars of the paper's numbers beside ours (``df`` has one row per item)."""
    labels = df[label_col] if label_col else df.index.map(lambda i: " / ".join(map(str, i)) if isinstance(i, tuple) else str(i))
    x = np.arange(len(df))
    w = 0.8 / len(value_cols)
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(df) + 2), 4))
    for j, col in enumerate(value_cols):
        ax.bar(x + (j - (len(value_cols) - 1) / 2) * w, df[col].astype(float), w, label=col)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set(ylabel=ylabel, title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def fitness_histories(histories: Mapping[str, object], title: str = "", levels: Mapping[str, float] | None = None,
                      ylabel: str = "best fitness"):
    """Best-so-far fitness of optimiser runs against generation (one stage after another, e.g.
    layer 1's generations then layer 2's; a dotted line where a stage starts) and against wall-clock
    time, one line per run. Each history has the columns ``layer``, ``best_so_far``, ``elapsed``
    (one row per generation). ``levels``: horizontal dashed lines (e.g. a control's fitness)."""
    import pandas as pd

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for label, h in histories.items():
        h = pd.DataFrame(h).reset_index(drop=True)
        step = np.arange(len(h))
        best = h.groupby("layer")["best_so_far"].cummax()
        axes[0].plot(step, best, marker="o", ms=2, label=label)
        axes[1].plot(h["elapsed"], best, marker="o", ms=2, label=label)
        for s in step[h["layer"].diff().fillna(0).to_numpy() != 0]:
            axes[0].axvline(s, ls=":", c="grey", lw=0.8)
    for i, (name, y) in enumerate((levels or {}).items()):
        for ax in axes:
            ax.axhline(y, ls="--", lw=1, c=f"C{7 + i}", label=f"{name}: {y:.3f}")
    axes[0].set(xlabel="generation (layer 1, then layer 2)", ylabel=ylabel)
    axes[1].set(xlabel="wall-clock time (s)", ylabel=ylabel)
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


VERDICT_COLORS = {"beats": "C2", "below": "C3", "tie": "0.45"}


def paired_differences(panels: Mapping[str, object], title: str = "", xlabel: str = "difference"):
    """Forest plot of paired differences: one panel per table of ``panels`` (title -> DataFrame
    with ``difference (points)``, ``95 % CI low``, ``95 % CI high`` and ``verdict`` columns, one
    row per pair, labelled by its index); each difference is a dot on its 95 % interval, coloured
    by its verdict, beside the line at 0."""
    panels = {k: v for k, v in panels.items() if v is not None and len(v)}
    if not panels:
        raise ValueError("paired_differences() needs at least one non-empty table")
    heights = [len(t) for t in panels.values()]
    height = 1.2 + 0.36 * sum(heights) + 0.5 * len(panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, height), sharex=True,
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (name, t) in zip(axes[:, 0], panels.items()):
        labels = [" / ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in t.index]
        y = np.arange(len(t))[::-1]
        d, lo, hi = (t[c].astype(float).to_numpy() for c in ("difference (points)", "95 % CI low", "95 % CI high"))
        for yi, di, l, h, v in zip(y, d, lo, hi, t["verdict"]):
            c = VERDICT_COLORS.get(v, "0.45")
            ax.plot([l, h], [yi, yi], color=c, lw=2.2, solid_capstyle="butt")
            ax.plot([di], [yi], "o", color=c, ms=5)
        ax.axvline(0, color="0.2", lw=0.9)
        ax.set_yticks(y, labels)
        ax.set_title(name, fontsize=10, loc="left")
        ax.grid(axis="y", visible=False)
        ax.tick_params(axis="x", labelbottom=True)  # every panel keeps its scale readable
    axes[-1, 0].set_xlabel(xlabel)
    handles = [plt.Line2D([], [], color=c, marker="o", lw=2.2, label=v) for v, c in VERDICT_COLORS.items()]
    top = 1 - 0.45 / height  # a strip above the panels for the title and the legend
    fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(1, 1), ncol=3, frameon=False, fontsize=9)
    if title:
        fig.suptitle(title, x=0.01, y=1 - 0.06 / height, ha="left", va="top", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, top))
    return fig
