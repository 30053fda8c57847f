"""Everything a notebook produces, and what readers get from it. One module per job:

* :mod:`~imgclf.reports.report`: :class:`Report`, one notebook run's tables, figures and
  ``results.json`` (parameters, metrics, timings, provenance, headline, claims, notes);
* :mod:`~imgclf.reports.folder`: the life cycle of ``reports/<notebook>/`` (a run writes into
  ``running/`` and is promoted whole when complete) and the paths read back from it;
* :mod:`~imgclf.reports.provenance`: commit, hardware, threads, Keras backend, versions;
* :mod:`~imgclf.reports.display`: numbers as text, deltas coloured by better/worse, styled
  tables, captions, pandas' display options;
* :mod:`~imgclf.reports.status`: after each notebook, its status record and the snapshot of its
  last complete run per profile, read back safely;
* :mod:`~imgclf.reports.index`: ``reports/index.html`` (template ``templates/index.html.j2``);
* :mod:`~imgclf.reports.publish`: paper-profile runs to ``results/`` and the README's tables.

``python -m imgclf.reports status|build|publish|readme`` is what ``run_all.sh`` calls.
"""

from ..files import atomic_write, atomic_write_text
from .display import (DELTA, default_caption, delta_style, display_options, expand_summaries, paper_columns,
                      paper_reference, side_by_side, styled_comparison, with_delta)
from .folder import RUNNING, promote, recover, remove_stale_parts
from .provenance import THREAD_ENV, git_provenance, hardware, threads
from .report import Report

__all__ = ["DELTA", "RUNNING", "THREAD_ENV", "Report", "atomic_write", "atomic_write_text", "default_caption",
           "delta_style", "display_options", "expand_summaries", "git_provenance", "hardware", "paper_columns",
           "paper_reference", "promote", "recover", "remove_stale_parts", "side_by_side", "styled_comparison", "threads",
           "with_delta"]
