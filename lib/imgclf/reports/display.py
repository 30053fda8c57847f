"""How numbers look: cells, deltas coloured by better/worse, styled paper-vs-ours tables, figure
captions, pandas' display options and what a notebook kernel is shown.

Values are stored as numbers (``results.json``, CSV); the text here is made once, for display.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

import numpy as np
import pandas as pd

DELTA = "ours - paper"
BETTER = ("higher", "lower", None)
"""What ``better`` may say of a number: higher is better, lower is better, or no direction."""

_BLUE, _RED = "33,102,172", "178,24,43"


# ----------------------------------------------------------------------------------------------
# cells
# ----------------------------------------------------------------------------------------------
def number(v: Any) -> str:
    """A table cell: whole numbers as integers with thousands separators (``218,448``, not
    ``218448.0``), other floats with 4 significant digits, ``–`` for None and NaN."""
    if v is None:
        return "\u2013"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return "\u2013"
        if abs(f) >= 1e4 or (f == int(f) and abs(f) >= 1):
            return f"{f:,.0f}"
        return f"{f:.4g}"
    return str(v)


def signed(v: Any) -> str:
    """A difference: always with its sign; ``–`` when not a number."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "\u2013"
    if not math.isfinite(f):
        return "\u2013"
    return f"{f:+,.0f}" if abs(f) >= 1e4 or (f == int(f) and abs(f) >= 1) else f"{f:+.4g}"


def as_number(v: Any) -> float | None:
    """The number a stored value holds: a finite int or float, or the mean of a stored
    :class:`imgclf.stats.Summary` (``{"mean", "sd", "n", "ci95"}``); else None. Text is never
    parsed: a number stored as text is not a number."""
    if isinstance(v, dict):
        v = v.get("mean")
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def is_summary(v: Any) -> bool:
    return isinstance(v, dict) and as_number(v) is not None


def value_text(v: Any) -> str:
    """A stored value as text: a number (:func:`number`), a stored Summary as ``mean ± sd (n=3)``,
    anything else as its ``str``."""
    if is_summary(v):
        mean, sd, n = as_number(v), as_number(v.get("sd")), v.get("n")
        n = n if isinstance(n, int) and not isinstance(n, bool) else None
        if sd is None or n is None or n < 2:
            return f"{mean:.4f}" + (f" (n={n})" if n is not None else "")
        return f"{mean:.4f} ± {sd:.4f} (n={n})"
    if isinstance(v, (dict, list)):
        return "\u2013"
    return number(v)


# ----------------------------------------------------------------------------------------------
# deltas
# ----------------------------------------------------------------------------------------------
def delta_style(delta: Any, paper: Any, better: str | None = "higher") -> str:
    """CSS for one ``ours - paper`` cell. ``better="higher"`` or ``"lower"``: blue where ours is
    better than the paper, red where worse; the stronger the colour, the larger the difference
    relative to the paper's value (full at 20 %). ``better=None`` (no direction): neutral grey."""
    d, p = as_number(delta), as_number(paper)
    if d is None or d == 0:
        return ""
    if better not in ("higher", "lower"):
        return "background-color:rgba(110,119,129,.15);"
    rel = abs(d) / abs(p) if p not in (None, 0) else 1.0
    alpha = 0.12 + 0.68 * min(1.0, rel / 0.2)
    good = d > 0 if better == "higher" else d < 0
    ink = "color:#fff;" if alpha > 0.5 else ""
    return f"background-color:rgba({_BLUE if good else _RED},{alpha:.2f});{ink}"


DELTA_KEY = ("ours \u2212 paper: <span style='background:rgba(33,102,172,.6);color:#fff;padding:0 3px'>ours better</span> "
             "<span style='background:rgba(178,24,43,.6);color:#fff;padding:0 3px'>ours worse</span> "
             "<span style='background:rgba(110,119,129,.15);padding:0 3px'>no direction</span>, "
             "stronger colour = larger difference relative to the paper")


def with_delta(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with an ``ours - paper`` column when it has numeric ``paper`` and ``ours`` columns and
    no delta column yet (non-numeric cells give an empty delta)."""
    if DELTA in df.columns or not {"paper", "ours"} <= set(df.columns):
        return df
    delta = pd.to_numeric(df["ours"], errors="coerce") - pd.to_numeric(df["paper"], errors="coerce")
    if delta.isna().all():
        return df
    out = df.copy()
    out.insert(list(out.columns).index("ours") + 1, DELTA, delta)
    return out


def styled_comparison(df: pd.DataFrame, caption: str = "", better: Any = "higher"):
    """A pandas ``Styler`` of a paper-vs-ours table: cells escaped and formatted, the delta column
    coloured better/worse (:func:`delta_style`). ``better`` is one direction for every row, or a
    mapping (or Series) row -> direction."""
    df = with_delta(df)
    sty = df.style.format(number, na_rep="\u2013", escape="html").format_index(escape="html", axis=0) \
        .format_index(escape="html", axis=1)
    if DELTA in df.columns:
        sty = sty.format(signed, subset=[DELTA], na_rep="\u2013")
        if "paper" in df.columns:
            colours = pd.DataFrame("", index=df.index, columns=df.columns)
            direction = [better.get(i, None) if hasattr(better, "get") else better for i in df.index]
            colours[DELTA] = [delta_style(d, p, b) for d, p, b in zip(df[DELTA], df["paper"], direction)]
            sty = sty.apply(lambda _: colours, axis=None)
    cap = f"<b>{html.escape(caption)}</b><br>" if caption else ""
    return sty.set_caption(f"{cap}<small>{DELTA_KEY}</small>").set_table_attributes('class="imgclf-comparison"')


def expand_summaries(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Columns holding :class:`imgclf.stats.Summary` cells as numbers: the mean in the column
    itself, ``<column> sd`` and ``<column> n`` beside it. Returns ``(numbers, shown)``; ``shown``
    has the "mean ± sd (n)" text for display (``None`` when there was no summary cell)."""
    from ..stats import Summary

    cols = [c for c in df.columns if df[c].map(lambda v: isinstance(v, Summary)).any()]
    if not cols:
        return df, None
    out, shown = df.copy(), df.copy()
    for c in cols:
        cells = df[c]
        pos = list(out.columns).index(c)
        out[c] = [v.mean if isinstance(v, Summary) else v for v in cells]
        out.insert(pos + 1, f"{c} sd", [v.sd if isinstance(v, Summary) and v.n > 1 else None for v in cells])
        out.insert(pos + 2, f"{c} n", [v.n if isinstance(v, Summary) else None for v in cells])
        shown[c] = [v.text() if isinstance(v, Summary) else v for v in cells]
    return out, shown


def paper_columns(ours: list[str], paper: list[str]) -> dict[str, str]:
    """Each of our columns (settings as run) -> the paper's column it stands for: the paper's column
    of the same name where there is one (``"60000/10000, 5 epochs"`` run as a second column is still
    the paper's third), else the paper's column at the same place (a smoke-sized stand-in).

    >>> paper_columns(["4000/1000, 5 epochs", "60000/10000, 5 epochs"],
    ...               ["4000/1000, 5 epochs", "4000/1000, 20 epochs", "60000/10000, 5 epochs"])
    {'4000/1000, 5 epochs': '4000/1000, 5 epochs', '60000/10000, 5 epochs': '60000/10000, 5 epochs'}
    """
    ours, paper = list(ours), list(paper)
    if len(ours) > len(paper):
        raise ValueError(f"{len(ours)} columns for the paper's {len(paper)}: {ours}")
    return {c: c if c in paper else paper[i] for i, c in enumerate(ours)}


def side_by_side(paper: pd.DataFrame, ours: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Long table ``(row, column) -> paper, ours, ours - paper`` over the cells both tables have."""
    p = paper.stack(list(range(paper.columns.nlevels)), future_stack=True).rename("paper")
    o = ours.stack(list(range(ours.columns.nlevels)), future_stack=True).rename("ours")
    df = pd.concat([p, o], axis=1, join="inner")
    df["ours - paper"] = df["ours"] - df["paper"]
    return df.round(digits)


# ----------------------------------------------------------------------------------------------
# captions
# ----------------------------------------------------------------------------------------------
_PAPER_REF = re.compile(r"^(fig|figs|figure|table|tables)(\d+)((?:_\d+)*)(?:_|$)", re.IGNORECASE)


def paper_reference(name: str) -> str | None:
    """The paper figure or table a figure's name says it regenerates: ``fig8_accuracy`` ->
    ``Figure 8``, ``fig4_5_mobilenet_cv_curves`` -> ``Figures 4-5``, ``table1_paper_vs_ours`` ->
    ``Table 1``; None when the name carries no number (a figure of our own)."""
    m = _PAPER_REF.match(name)
    if not m:
        return None
    kind = "Figure" if m.group(1).lower().startswith("fig") else "Table"
    nums = [m.group(2), *[n for n in m.group(3).split("_") if n]]
    if len(nums) == 1:
        return f"{kind} {nums[0]}"
    return f"{kind}s {nums[0]}\u2013{nums[-1]}" if len(nums) == 2 else f"{kind}s {', '.join(nums)}"


def default_caption(name: str) -> str:
    """A caption derived from a figure's name (see :func:`paper_reference`): ``fig8_accuracy`` ->
    ``"Figure 8 of the paper, regenerated: accuracy"``."""
    ref = paper_reference(name)
    words = (_PAPER_REF.sub("", name) if ref else name).replace("_", " ").strip()
    if ref:
        return f"{ref} of the paper, regenerated" + (f": {words}" if words else "")
    return f"Our figure, not a numbered figure of the paper: {words}"


# ----------------------------------------------------------------------------------------------
# the notebook kernel: pandas options, wide tables, displayed outputs
# ----------------------------------------------------------------------------------------------
TABLE_CHARS = 120
"""About how many characters of cells fit across a report page at laptop width (1366 px); a
wider DataFrame is shown transposed (few rows) or split into column groups."""


def _float(v: float) -> str:
    return number(v)


def display_options() -> None:
    """pandas' display options for every notebook, set once by :func:`imgclf.papers.start`:
    no cut rows, columns or cell text (a reader must see every answer and parameter), whole
    numbers as integers, and wide DataFrames shown transposed or split (:func:`frame_html`)."""
    pd.set_option("display.max_columns", None)
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_rows", 500)
    pd.set_option("display.width", TABLE_CHARS)
    pd.set_option("display.float_format", _float)
    ip = _ipython()
    if ip is not None:
        ip.display_formatter.formatters["text/html"].for_type(pd.DataFrame, frame_html)


def _width(df: pd.DataFrame) -> list[int]:
    """Characters each column needs (the index first), as pandas would print them."""
    def w(values, head) -> int:
        cells = [len(number(v) if isinstance(v, (float, np.floating)) else str(v)) for v in values]
        return max([len(str(head)), *cells]) + 2

    widths = [w(df.index, df.index.name or "")]
    widths += [w(df[c], c) for c in df.columns]
    return widths


def frame_html(df: pd.DataFrame) -> str:
    """The HTML of a DataFrame that fits a page: as is when narrow; transposed when wider than
    :data:`TABLE_CHARS` and it has fewer rows than columns; else in groups of columns."""
    widths = _width(df)
    if sum(widths) <= TABLE_CHARS or df.shape[1] <= 1:
        return df.to_html()
    if df.shape[0] < df.shape[1] and sum(_width(df.T)) <= TABLE_CHARS * 1.5:
        return ("<p class='imgclf-note'><small>shown transposed to fit the page: its "
                f"{df.shape[1]} columns as rows</small></p>" + df.T.to_html())
    parts, start, used = [], 0, widths[0]
    for j, cw in enumerate(widths[1:]):
        if used + cw > TABLE_CHARS and j > start:
            parts.append((start, j))
            start, used = j, widths[0]
        used += cw
    parts.append((start, df.shape[1]))
    return "".join(f"<p class='imgclf-note'><small>columns {a + 1}–{b} of {df.shape[1]}</small></p>"
                   + df.iloc[:, a:b].to_html() for a, b in parts)


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return None
    return get_ipython()


def in_kernel() -> bool:
    """True inside a Jupyter kernel (JupyterLab, papermill), where outputs are displayed."""
    ip = _ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def show(bundle: dict, metadata: dict | None = None) -> None:
    """Display a MIME bundle in the notebook (only called inside a kernel)."""
    from IPython.display import display

    display(bundle, raw=True, metadata=metadata or {})
