"""The command line ``run_all.sh`` calls::

    python -m imgclf.reports status [--reports DIR] NAME ok|failed SECONDS PROFILE LOGFILE  # after each notebook
    python -m imgclf.reports build [--reports DIR]                # reports/index.html, at the end
    python -m imgclf.reports publish [--reports DIR] [--profile P] [PREFIX ...]  # last complete runs -> results/
    python -m imgclf.reports reproduce [--reports DIR] NN [UNIT]  # recompute one published unit, compare
    python -m imgclf.reports bank [--reports DIR] --profile P [PREFIX ...]  # finished units -> results/
    python -m imgclf.reports restore [--reports DIR] [PREFIX ...] # results/'s unit records -> reports/
    python -m imgclf.reports readme [README]                      # README tables from results/
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..config import REPO_ROOT

REPORTS = REPO_ROOT / "reports"
RESULTS = REPO_ROOT / "results"
README = REPO_ROOT / "README.md"


def reports_option(argv: list[str], default: Path) -> tuple[Path, list[str]]:
    """``--reports DIR`` taken out of ``argv`` (the command lines of this module and the browser)."""
    if "--reports" not in argv:
        return default, argv
    i = argv.index("--reports")
    if i + 1 >= len(argv):
        raise SystemExit("--reports needs a folder")
    return Path(argv[i + 1]).resolve(), argv[:i] + argv[i + 2:]


def main(argv: list[str]) -> int:
    from . import index, publish, status

    reports, argv = reports_option(argv, REPORTS)
    if argv[:1] == ["status"] and len(argv) >= 5:
        status.record_status(argv[1], argv[2], float(argv[3]), argv[4], argv[5] if len(argv) > 5 else None, reports)
        return 0
    if argv[:1] == ["build"]:
        print(index.build(reports, RESULTS))
        return 0
    if argv[:1] in (["publish"], ["bank"]):
        args, profile = argv[1:], "paper"
        if "--profile" in args:
            i = args.index("--profile")
            if i + 1 >= len(args):
                raise SystemExit("--profile needs a name")
            profile, args = args[i + 1], args[:i] + args[i + 2:]
        if argv[0] == "bank":
            from . import bank

            return bank.bank(args, reports, RESULTS, profile)
        return publish.publish(args, reports, RESULTS, profile)
    if argv[:1] == ["restore"]:
        from . import bank

        return bank.restore(argv[1:], reports, RESULTS)
    if argv[:1] == ["reproduce"] and len(argv) in (2, 3):
        from . import reproduce

        return reproduce.main(argv[1], argv[2] if len(argv) == 3 else None, reports, RESULTS)
    if argv[:1] == ["readme"]:
        path = Path(argv[1]) if len(argv) > 1 else README
        done = publish.update_readme(path, RESULTS)
        print(f"{path}: " + (f"updated {', '.join(done)}" if done else "unchanged"))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
