"""From an executed notebook to the HTML a reader opens.

``run_all.sh`` calls, after papermill::

    python -m imgclf.render reports/executed/NAME.PROFILE.ipynb reports/html reports/NAME

which

1. strips library noise from the notebook's text outputs (TensorFlow/absl C++ logging, oneDNN
   and CUDA notices, library warnings, progress-bar frames and per-epoch progress lines; the
   complete output stays in ``reports/logs/NAME.log``, written by papermill's ``--log-output``).
   What a reader needs (NOT COMPARABLE, a run at chance, a fallback, our own prints) is kept;
   the executed notebook is rewritten with the cleaned outputs;
2. renders ``NAME.PROFILE.html``, the report view (template ``imgclf_report``: a bar with the
   run's profile, date, commit, hardware and backend; code folded behind a "code" toggle,
   bookkeeping cells marked, Keras model summaries folded, figure captions and comparison tables
   styled), and ``NAME.PROFILE.full.html``, the whole notebook with its code. One pair per
   profile, so a smoke run never overwrites the paper run's pages.

The profile comes from the notebook's papermill parameters; the bar's facts from the run's
``results.json`` (``reports/NAME/running/results.json`` when the run stopped before finishing,
else ``reports/NAME/results.json``; give the folder ``reports/NAME`` as third argument).
"""

from __future__ import annotations

import copy
import html
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


PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"  # papermill's red "An Exception was encountered" cells


def mark_partial_stop(nb) -> bool:
    """A notebook that stopped itself at a spent budget (``imgclf.runs.PartialRun``, raised by
    ``Report.stop_if_partial`` after the report was finished as partial) did not fail: papermill's
    red exception banners become a note that says "partial run" and where it stopped, and the
    stop's error output a plain line. In place; returns whether ``nb`` stopped so."""
    stop = None
    for cell in nb.cells:
        for i, out in enumerate(cell.get("outputs", []) if cell.cell_type == "code" else ()):
            if out.get("output_type") == "error" and out.get("ename") == "PartialRun":
                stop = (cell, i, str(out.get("evalue", "")))
    if stop is None:
        return False
    import nbformat

    cell, i, why = stop
    cell.outputs[i] = nbformat.v4.new_output("stream", name="stdout", text=f"stopped here (partial run): {why}\n")
    where = f"In [{cell.get('execution_count')}]" if cell.get("execution_count") else "its units"
    banners = [c for c in nb.cells if PAPERMILL_ERROR_TAG in c.get("metadata", {}).get("tags", [])]
    top = (f"**Partial run.** The time budget was spent before every run unit finished, and the cells from "
           f"[{where}](#papermill-error-cell) on need them all: the notebook stopped there. {why}")
    here = '<span id="papermill-error-cell"></span>**The notebook stopped here (partial run).**'
    for k, c in enumerate(banners):  # papermill's two: at the top, and just above the failed cell
        c.source = top if k == 0 else here
    return True


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _plain(out) -> str:
    data = out.get("data") or {}
    text = data.get("text/plain", out.get("text", ""))
    return _ANSI.sub("", "".join(text) if isinstance(text, list) else str(text))


def fold_model_summaries(nb) -> int:
    """Fold each Keras ``model.summary()`` of ``nb`` (a run of display outputs from ``Model: "x"``
    to ``Non-trainable params``, or ``Optimizer params`` when shown) into one ``<details>`` output
    whose summary line names the model and its parameter count, in place. Returns how many."""
    folded = 0
    for cell in nb.cells:
        outs = cell.get("outputs", [])
        new, i = [], 0
        while i < len(outs):
            m = re.match(r'\s*Model: "(.*)"', _plain(outs[i])) if outs[i].get("output_type") == "display_data" else None
            end = None
            if m:
                for j in range(i + 1, min(i + 8, len(outs))):
                    if outs[j].get("output_type") != "display_data":
                        break
                    if "Non-trainable params" in _plain(outs[j]):
                        end = j + (1 if j + 1 < len(outs) and "Optimizer params" in _plain(outs[j + 1]) else 0)
                        break
            if end is None:
                new.append(outs[i])
                i += 1
                continue
            part = outs[i:end + 1]
            total = next((re.search(r"Total params:\s*([\d,]+)", _plain(o)) for o in part
                          if "Total params" in _plain(o)), None)
            body = "".join("".join(o["data"]["text/html"]) if "text/html" in o.get("data", {})
                           else f"<pre>{html.escape(_plain(o))}</pre>" for o in part)
            head = f"Keras model summary: <b>{html.escape(m.group(1))}</b>" + (
                f", {total.group(1)} parameters" if total else "")
            new.append({"output_type": "display_data", "metadata": {"imgclf": {"summary": m.group(1)}},
                        "data": {"text/html": f'<details class="imgclf-summary"><summary>{head}</summary>{body}</details>',
                                 "text/plain": "".join(_plain(o) for o in part)}})
            folded += 1
            i = end + 1
        cell["outputs"] = new
    return folded


def run_results(run_folder: str | Path | None) -> dict:
    """The results.json of the run an executed notebook comes from: ``running/results.json``
    when that run stopped before finishing, else the folder's ``results.json``; {} if none."""
    from .reports.status import read_record

    if run_folder is None:
        return {}
    run_folder = Path(run_folder)
    running = read_record(run_folder / "running" / "results.json").data
    return running or read_record(run_folder / "results.json").data


def notebook_profile(nb) -> str | None:
    """The profile a papermill run of ``nb`` was given (None when not run by papermill)."""
    params = ((nb.metadata.get("papermill") or {}).get("parameters") or {})
    p = params.get("profile")
    return p if isinstance(p, str) else None


def bar_facts(res: dict, profile: str | None) -> dict:
    """What the top bar of a report says: profile, date, commit, hardware, backend, and the run's
    state; the run's results must be of the page's profile, else the facts are unknown."""
    from .reports import provenance

    if not res or (profile is not None and res.get("profile") != profile):
        return {"facts": [("profile", profile or "unknown"), ("provenance", "this run's results.json was not found")],
                "state": "unknown"}
    state = "complete" if res.get("complete") is True else "stopped before finishing"
    if res.get("partial"):
        state = "partial (time budget)"
    return {"facts": provenance.summary(res), "state": state,
            "not_comparable": res.get("not_comparable_reason") if res.get("comparable") is False else None}


def render_report(nb, out: Path, results_json: Path | None = None, links: bool = True,
                  full_name: str | None = None, res: dict | None = None, name: str | None = None) -> Path:
    """Write the report view of ``nb`` (already cleaned) to ``out``. ``links=False``: no links to
    the full notebook and the index (a page published on its own, under results/)."""
    from nbconvert import HTMLExporter

    from .files import atomic_write_text
    from .reports.status import read_record

    nb = copy.deepcopy(nb)
    fold_model_summaries(nb)
    if res is None:
        res = read_record(results_json).data if results_json is not None else {}
    name = name or Path(out).name.split(".")[0]
    resources = {"metadata": {"name": name},
                 "imgclf": {"full": full_name if links else None, "index": "../index.html" if links else None,
                            **bar_facts(res, notebook_profile(nb))}}
    exporter = HTMLExporter(template_name=REPORT_TEMPLATE, extra_template_basedirs=[str(TEMPLATES)])
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return atomic_write_text(out, body)


def render(executed: str | Path, html_dir: str | Path, run_folder: str | Path | None = None) -> tuple[Path, Path, int]:
    """Clean ``executed`` in place and write ``<name>.<profile>.html`` (report view) and
    ``<name>.<profile>.full.html`` into ``html_dir``. Returns both paths and the number of noise
    lines dropped."""
    import nbformat
    from nbconvert import HTMLExporter

    from .files import atomic_write_text
    from .reports.folder import plain_name

    executed, html_dir = Path(executed), Path(html_dir)
    nb = nbformat.read(executed, as_version=4)
    dropped = clean_notebook(nb)
    mark_partial_stop(nb)
    atomic_write_text(executed, nbformat.writes(nb))
    res = run_results(run_folder)
    profile = notebook_profile(nb) or (res.get("profile") if isinstance(res.get("profile"), str) else None)
    name = executed.stem.split(".")[0]
    stem = f"{name}.{plain_name(profile) or 'unknown'}"
    report = render_report(nb, html_dir / f"{stem}.html", full_name=f"{stem}.full.html", res=res, name=name)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb, resources={"metadata": {"name": stem}})
    full = atomic_write_text(html_dir / f"{stem}.full.html", body)
    return report, full, dropped


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    report, full, dropped = render(*argv)
    print(f"{report} and {full.name} ({dropped} log/progress lines left out; all of them are in the log)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
