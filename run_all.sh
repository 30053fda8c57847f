#!/usr/bin/env bash
# Rebuild every report, or run the tests, in the project's own virtual environment.
#
#   ./run_all.sh                    execute every notebook (smoke profile), render HTML, write reports/index.html
#   ./run_all.sh --profile paper    the same at paper scale (GPU recommended for 03-05); a run that
#                                   completes (with no -p/-y override) is also published to results/
#   ./run_all.sh --profile cpu4000 04   a paper's own named profile (see its config.py)
#   ./run_all.sh 01 [03 ...]        only the notebooks whose names start with these prefixes
#   ./run_all.sh --budget 8 ...     start no new run unit after 8 minutes per notebook, stop one in
#                                   progress at its next checkpoint; run again to go on
#   ./run_all.sh --no-reuse ...     recompute every run unit (default: reuse finished ones)
#   ./run_all.sh -p NAME VALUE      set a notebook parameter (papermill -p; -y 'YAML' for lists)
#   ./run_all.sh test [pytest args] the test suite
#   ./run_all.sh check [--docs]     open every page of reports/ in headless Chromium: all figures shown,
#                                   no log line visible, index links resolve; screenshots in
#                                   reports/screenshots/ (--docs: also docs/index.png for the README)
#   ./run_all.sh publish [01 ...]   copy the last complete paper-profile runs from reports/ to results/
#   ./run_all.sh readme             regenerate the README's result tables from results/
#
# Environment: IMGCLF_DATA (data directory, default data/), IMGCLF_REPORTS (output directory, default
# reports/), PYTHON (interpreter used to create .venv, default python3), IMGCLF_TIMEOUT (seconds per
# notebook cell, default 3600).
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3}
REPORTS=${IMGCLF_REPORTS:-$ROOT/reports}
# TensorFlow's C++ INFO/WARNING lines are off; its ERROR lines (e.g. "E0000 ... NodeDef mentions
# attribute use_unbounded_threadpool") still reach the log, and imgclf.render keeps them out of the HTML.
# No MPLBACKEND here: the kernel must pick matplotlib's inline backend (Agg would hide every figure).
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

ensure_venv() {
  # (Re)install when .venv is missing or pyproject.toml changed since the last install.
  local stamp="$VENV/.imgclf-installed" want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  echo "==> setting up $VENV (pip install -e .[dev])"
  [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV" || return 1
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null || return 1
  "$VENV/bin/python" -m pip install -q -e ".[dev]" || return 1
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name imgclf --display-name "Python (imgclf)" >/dev/null || return 1
  echo "$want" >"$stamp"
}

ensure_venv || { echo "run_all.sh: could not set up the environment in $VENV" >&2; exit 2; }
# shellcheck disable=SC1091
source "$VENV/bin/activate"

case "${1:-}" in
  test) shift; exec python -m pytest "$@" ;;
  check) shift; exec python -m imgclf.browser --reports "$REPORTS" "$@" ;;
  publish) shift; exec python -m imgclf.index publish --reports "$REPORTS" "$@" ;;
  readme) shift; exec python -m imgclf.index readme "$@" ;;
esac

PROFILE=smoke
SELECT=()
PM_ARGS=()   # extra papermill arguments (parameters)
OVERRIDES=0  # parameters set on the command line: such a paper run is not published automatically
while [[ $# -gt 0 ]]; do
  case "$1" in
    --profile) PROFILE="$2"; shift 2 ;;
    --profile=*) PROFILE="${1#*=}"; shift ;;
    --budget) PM_ARGS+=(-p budget_minutes "$2"); shift 2 ;;
    --budget=*) PM_ARGS+=(-p budget_minutes "${1#*=}"); shift ;;
    --no-reuse) PM_ARGS+=(-p reuse_runs False); shift ;;
    -p) PM_ARGS+=(-p "$2" "$3"); OVERRIDES=1; shift 3 ;;
    -y) PM_ARGS+=(-y "$2"); OVERRIDES=1; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "run_all.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) SELECT+=("$1"); shift ;;
  esac
done
# smoke, paper, or a paper's own named profile (e.g. cpu4000 of notebook 04): the notebook checks the name
[[ "$PROFILE" =~ ^[A-Za-z0-9_-]+$ ]] || { echo "--profile must be a profile name (smoke, paper, ...), got '$PROFILE'" >&2; exit 2; }
if [[ "$REPORTS" != "$ROOT/reports" ]]; then
  PM_ARGS+=(-p reports_root "$REPORTS")
fi

mkdir -p "$REPORTS"/executed "$REPORTS"/html "$REPORTS"/logs "$REPORTS"/status
failed=0
ran=0
for nb in notebooks/[0-9]*.ipynb; do
  name=$(basename "$nb" .ipynb)
  if [[ ${#SELECT[@]} -gt 0 ]]; then
    hit=0; for s in "${SELECT[@]}"; do [[ "$name" == "$s"* ]] && hit=1; done
    [[ $hit == 1 ]] || continue
  fi
  ran=$((ran + 1))
  echo "==> $name ($PROFILE)"
  start=$(date +%s)
  log="$REPORTS/logs/$name.log"
  executed="$REPORTS/executed/$name.ipynb"
  rm -f "$executed"
  # the complete output (library logging, progress bars) goes to the log; the HTML gets a cleaned copy
  if env -u MPLBACKEND papermill -k imgclf --execution-timeout "${IMGCLF_TIMEOUT:-3600}" --log-output --no-progress-bar \
       -y "profile: $PROFILE" "${PM_ARGS[@]}" "$nb" "$executed" >"$log" 2>&1; then
    status=ok
  else
    status=failed; failed=1
    echo "    FAILED: see $log"
  fi
  secs=$(( $(date +%s) - start ))
  if [[ -f "$executed" ]]; then
    python -m imgclf.render "$executed" "$REPORTS/html" >>"$log" 2>&1 \
      || echo "    (HTML rendering failed: see $log)"
  fi
  python -m imgclf.index status --reports "$REPORTS" "$name" "$status" "$secs" "$PROFILE" "$log"
  echo "    $status in ${secs}s"
  if [[ "$status" == ok && "$PROFILE" == paper && $OVERRIDES == 0 ]]; then
    python -m imgclf.index publish --reports "$REPORTS" "$name" || echo "    (publishing to results/ failed)"
  fi
done
if [[ $ran == 0 ]]; then
  echo "run_all.sh: no notebook in notebooks/ matches: ${SELECT[*]}" >&2
  exit 2
fi
python -m imgclf.index build --reports "$REPORTS" >/dev/null
echo "==> $REPORTS/index.html"
exit $failed
