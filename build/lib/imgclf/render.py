"""From an executed notebook to the HTML a reader opens.

``run_all.sh`` calls, after papermill::

    python -m imgclf.render reports/executed/NAME.ipynb reports/html

which

1. strips library noise from the notebook's text outputs (TensorFlow/absl C++ logging, oneDNN
   and CUDA notices, library warnings, progress-bar frames and per-epoch progress lines; the
   complete output stays in ``reports/logs/NAME.log``, written by papermill's ``--log-output``).
   What a reader needs (NOT COMPARABLE, a run at chance, a fallback, our own prints) is kept;
   the executed notebook is rewritten with the cleaned outputs;
2. renders ``NAME.html``, the report view (template ``imgclf_report``: code folded behind a
   "code" toggle, bookkeeping cells marked, figure captions and comparison tables styled), and
   ``NAME.full.html``, the whole notebook with its code.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"
REPORT_TEMPLATE = "imgclf_report"

# One pattern per kind of noise, matched against one visible line of a stream output.
NOISE = [
    # absl / TensorFlow C++ logging: "E0000 00:00:1795607863.028397    9616 node_def_util.cc:682] ..."
    re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d+(\.\d+)?\s+\d+\s+\S+:\d+\]"),
    # older TensorFlow C++ format: "2024-01-01 12:00:00.123456: I tensorflow/..."
    re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+"),
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(r"oneDNN custom operations are on|TF_ENABLE_ONEDNN_OPTS"),
    re.compile(r"This TensorFlow binary is optimized|To enable the following instructions|rebuild TensorFlow with"),
    re.compile(r"Unable to register cu(DNN|FFT|BLAS) factory|TF-TRT Warning|Could not find cuda drivers"
               r"|computation placer already registered|cuda_(executor|blas|dnn|fft)|NUMA node"),
    # Python warnings raised inside installed libraries: "/.../site-packages/keras/...py:12: UserWarning: ..."
    re.compile(r"site-packages/.*\.py:\d+: \w*Warning\b"),
    # tqdm frames ("desc:  40%|####      | 2/5 [00:03<00:04, ...]") and Keras' per-epoch lines
    re.compile(r"\d+%\|.*\|\s*\d+/\d+\s*\["),
    re.compile(r"^\s*Epoch \d+/\d+\s*$"),
    # per-epoch / per-generation progress lines ("CMA-ES layer 1 gen   10/100  best 0.93 ... elapsed 12.0s")
    re.compile(r"\b(gen|generation|epoch)\s+\d+\s*/\s*\d+\b.*\b(elapsed|loss|val_)", re.IGNORECASE),
    re.compile(r"^\s*\d+/\d+\s+\S*[\u2501=>.]{4,}"),
]

_WARNING_SOURCE = re.compile(r"site-packages/.*\.py:\d+: \w*Warning\b")


def is_noise(line: str) -> bool:
    """True for a line a report reader does not need (see :data:`NOISE`)."""
    return any(p.search(line) for p in NOISE)


def clean_text(text: str) -> tuple[str, int]:
    """``text`` without its noise lines; returns ``(text, number of lines dropped)``.

    Carriage returns are resolved first, as a terminal would (each line shows what its last
    ``\\r`` segment wrote), so a progress bar's many frames count as the one line they show.
    A library warning's source line (the indented line after it) goes with it.
    """
    ends_nl = text.endswith("\n")
    lines = text.split("\n")[:-1] if ends_nl else text.split("\n")
    kept, dropped, skip_source = [], 0, False
    for raw in lines:
        segments = [s for s in raw.split("\r") if s.strip()]
        line = segments[-1] if segments else ("" if "\r" in raw else raw)
        if skip_source and line.startswith((" ", "\t")) and line.strip():
            dropped += 1  # the source line printed under a library warning
            skip_source = False
            continue
        skip_source = False
        if is_noise(line) or (segments and all(is_noise(s) for s in segments)):
            dropped += 1
            skip_source = bool(_WARNING_SOURCE.search(line))
            continue
        if "\r" in raw and not segments:  # a line that only ever held erased frames
            continue
        kept.append(line)
    out = "\n".join(kept)
    return (out + "\n" if ends_nl and kept else out), dropped


def clean_notebook(nb) -> int:
    """Strip noise from every stream output of ``nb`` (an ``nbformat`` notebook), in place; drop
    stream outputs left empty. Returns the number of lines dropped."""
    dropped = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text, n = clean_text(out.get("text", ""))
                dropped += n
                if not text.strip():
                    continue
                out["text"] = text
            outputs.append(out)
        cell["outputs"] = outputs
    return dropped


def noise_lines(text: str) -> list[str]:
    """The lines of ``text`` (e.g. a page's visible text) that are noise."""
    return [l for l in text.splitlines() if is_noise(l)]


def render(executed: str | Path, html_dir: str | Path) -> tuple[Path, Path, int]:
    """Clean ``executed`` in place and write ``<name>.html`` (report view) and ``<name>.full.html``
    into ``html_dir``. Returns both paths and the number of noise lines dropped."""
    import nbformat
    from nbconvert import HTMLExporter

    from .files import atomic_write_text

    executed, html_dir = Path(executed), Path(html_dir)
    name = executed.stem
    nb = nbformat.read(executed, as_version=4)
    dropped = clean_notebook(nb)
    atomic_write_text(executed, nbformat.writes(nb))
    resources = {"metadata": {"name": name}, "imgclf": {"full": f"{name}.full.html", "report": f"{name}.html"}}
    report = HTMLExporter(template_name=REPORT_TEMPLATE, extra_template_basedirs=[str(TEMPLATES)])
    full = HTMLExporter(template_name="lab")
    paths = []
    for exporter, fname in ((report, f"{name}.html"), (full, f"{name}.full.html")):
        body, _ = exporter.from_notebook_node(nb, resources=dict(resources))
        paths.append(atomic_write_text(html_dir / fname, body))
    return paths[0], paths[1], dropped


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    report, full, dropped = render(argv[0], argv[1])
    print(f"{report} and {full.name} ({dropped} log/progress lines left out; all of them are in the log)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
