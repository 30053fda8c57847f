"""imgclf: the thin library behind the five paper notebooks.

Modules: ``config`` (profiles, paths), ``data`` (loaders, corruption, splits), ``models``
(builders), ``train`` (fit, seeding, devices), ``metrics``, ``plots``, ``reports`` (files under
``reports/``), ``paper`` (the papers' numbers), ``index`` (the HTML index of all runs).

Importing it quiets TensorFlow's C++ logging (``TF_CPP_MIN_LOG_LEVEL=3`` unless set) and shows the
library's own messages (``[runs] ...``) at INFO; ``logging.getLogger("imgclf").setLevel("WARNING")``
hides them. See :mod:`imgclf.logs`.
"""

from . import logs as _logs

_logs.setup_environment()  # before anything imports TensorFlow
_logs.setup_logging()

__version__ = "0.1.0"
