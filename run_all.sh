#!/usr/bin/env bash
# Rebuild every report, or run the tests, in the project's own virtual environment.
#
#   ./run_all.sh                    execute every notebook (smoke profile), render HTML, write reports/index.html
#   ./run_all.sh --profile paper    the same at paper scale (GPU recommended for 03-05)
#   ./run_all.sh 01 [03 ...]        only the notebooks whose names start with these prefixes
#   ./run_all.sh --budget 8 ...     start no new run unit after 8 minutes per notebook; run again to go on
#   ./run_all.sh --no-reuse ...     recompute every run unit (default: reuse finished ones)
#   ./run_all.sh test [pytest args] the test suite
#
# Environment: IMGCLF_DATA (data directory, default data/), PYTHON (interpreter used to create
# .venv, default python3), IMGCLF_TIMEOUT (seconds per notebook cell, default 3600).
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
export MPLBACKEND=${MPLBACKEND:-Agg}

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

if [[ "${1:-}" == "test" ]]; then
  shift
  exec python -m pytest "$@"
fi

PROFILE=smoke
SELECT=()
EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --profile) PROFILE="$2"; shift 2 ;;
    --profile=*) PROFILE="${1#*=}"; shift ;;
    --budget) EXTRA+=(-p budget_minutes "$2"); shift 2 ;;
    --budget=*) EXTRA+=(-p budget_minutes "${1#*=}"); shift ;;
    --no-reuse) EXTRA+=(-p reuse_runs False); shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) SELECT+=("$1"); shift ;;
  esac
done
[[ "$PROFILE" == smoke || "$PROFILE" == paper ]] || { echo "--profile must be smoke or paper, got '$PROFILE'" >&2; exit 2; }

mkdir -p reports/executed reports/html reports/logs reports/status
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
  if papermill -k imgclf --execution-timeout "${IMGCLF_TIMEOUT:-3600}" --log-output --no-progress-bar \
       -y "profile: $PROFILE" "${EXTRA[@]}" "$nb" "reports/executed/$name.ipynb" >"reports/logs/$name.log" 2>&1; then
    status=ok
  else
    status=failed; failed=1
    echo "    FAILED: see reports/logs/$name.log"
  fi
  secs=$(( $(date +%s) - start ))
  if [[ -f "reports/executed/$name.ipynb" ]]; then
    jupyter nbconvert --to html --output-dir reports/html "reports/executed/$name.ipynb" >>"reports/logs/$name.log" 2>&1 \
      || echo "    (HTML rendering failed: see reports/logs/$name.log)"
  fi
  python -m imgclf.index status "$name" "$status" "$secs" "$PROFILE" "reports/logs/$name.log"
  echo "    $status in ${secs}s"
done
if [[ $ran == 0 ]]; then
  echo "run_all.sh: no notebook in notebooks/ matches: ${SELECT[*]}" >&2
  exit 2
fi
python -m imgclf.index build
echo "==> reports/index.html"
exit $failed
