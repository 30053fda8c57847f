"""``python -m imgclf.reports ...``: see :mod:`imgclf.reports.cli`."""

import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
