"""imgclf: the thin library behind the five paper notebooks.

Modules: ``config`` (profiles, paths), ``data`` (loaders, corruption, splits), ``models``
(builders), ``train`` (fit, seeding, devices), ``metrics``, ``plots``, ``reports`` (files under
``reports/``), ``paper`` (the papers' numbers), ``index`` (the HTML index of all runs).
"""

__version__ = "0.1.0"
