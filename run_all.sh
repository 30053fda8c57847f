#!/usr/bin/env bash
# Rebuild every report, or run the tests, in the project's own virtual environment.
#
#   ./run_all.sh                    execute every notebook (smoke profile), render reports/html/<nb>.<profile>.html,
#                                   write reports/index.html
#   ./run_all.sh --profile paper    the same at paper scale (GPU recommended for 03-05); a run that
#                                   completes (with no -p/-y override) is also published to results/,
#                                   its report page included
#   ./run_all.sh --profile cpu32 03 a profile one paper defines (03: all of MNIST at 32 px, 2-12 CPU hours by CPU kind;
#                                   04: cpu4000, the 4000/1000 setting, ~3 CPU hours); see its config.py
#   ./run_all.sh 01 [03 ...]        only the notebooks whose names start with these prefixes
#   ./run_all.sh --budget 8 ...     start no new run unit after 8 minutes per notebook, stop one in
#                                   progress at its next checkpoint; run again to go on
#   ./run_all.sh --no-reuse ...     recompute every run unit (default: reuse finished ones)
#   ./run_all.sh -p NAME VALUE      set a notebook parameter (papermill -p; -y 'YAML' for lists)
#   ./run_all.sh --backend jax ...  run under Keras' JAX backend (installs jax into .venv once)
#   ./run_all.sh test [pytest args] the test suite (KERAS_BACKEND=jax ./run_all.sh test -m portable: the
#                                   portable subset under JAX)
#   ./run_all.sh gpu-check [OUT]    the prepared GPU check (JAX backend): device, portable tests, paper 3/4/5
#                                   speeds, in OUT/gpu_check.json (OUT: argument, $OUT, reports/gpu-check);
#                                   without a GPU the same steps at tiny sizes (a rehearsal)
#   ./run_all.sh wheels             download into .whl/ the wheels gpu-check brings to a machine
#                                   with JAX and no network (keras, namex, optree, cma, deap; Python 3.12)
#   ./run_all.sh check [--docs]     open every page of reports/ in headless Chromium: all figures shown,
#                                   no log line visible, index links resolve, no page
#                                   scrolls sideways at 1366 or 375 px, no table clipped or cut; screenshots in
#                                   reports/screenshots/ (--docs: also docs/index.png for the README)
#   ./run_all.sh publish [01 ...]   copy the last complete paper-profile runs from reports/ to results/
#                                   (--profile cpu32|cpu4000: that CPU-sized run, in the paper's place)
#   ./run_all.sh reproduce NN [UNIT] recompute one published run unit of notebook NN (the cheapest, or the
#                                   one named) at HEAD, compare it with results/NN_*/units.json: prints
#                                   the numbers and "reproduced: yes|no"
#   ./run_all.sh bank --profile P NN  keep the units the last P run of NN finished in results/NN_*/banked-P.json
#                                   (tracked: a run too long for one machine goes on from a fresh clone)
#   ./run_all.sh restore [NN ...]   put results/'s unit records (units.json, banked-*.json) back into
#                                   reports/NN_*/runs/, where the next run reuses them (same call and code only)
#   ./run_all.sh readme [FILE]      regenerate the README's result tables from results/ (says whether
#                                   the file changed)
#
# Environment: IMGCLF_DATA (data directory, default data/), IMGCLF_REPORTS (output directory, default
# reports/), PYTHON (interpreter used to create .venv, default python3), IMGCLF_TIMEOUT (seconds per
# notebook cell; default 3600 for smoke, the budget + 1 h with --budget, else a day: one cell of a
# paper-scale profile runs several units of tens of minutes each), IMGCLF_NO_VENV=1 (use the active environment, e.g. conda's from
# environment.yml, instead of creating .venv; it needs `pip install -e .[dev]` done there).
# .venv is installed with `pip install -c requirements-lock.txt -e .[dev]` (the tested versions),
# again whenever pyproject.toml or requirements-lock.txt changes.
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3}
REPORTS=${IMGCLF_REPORTS:-$ROOT/reports}
# TensorFlow's C++ logging is off (also set by `import imgclf` and by the imgclf kernel's kernelspec,
# see lib/imgclf/logs.py); imgclf.render's filter is the safety net for what still gets through.
# No MPLBACKEND here: the kernel must pick matplotlib's inline backend (Agg would hide every figure).
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "run_all.sh: $*" >&2; exit 2; }

ensure_venv() {
  # (Re)install when .venv is missing or pyproject.toml or requirements-lock.txt changed since the
  # last install. ./kernel registers the "imgclf" Jupyter kernel in .venv.
  local stamp="$VENV/.imgclf-installed" want lock=()
  if [[ "${IMGCLF_NO_VENV:-0}" == 1 ]]; then
    command -v papermill >/dev/null || { echo "IMGCLF_NO_VENV=1 but papermill is not on PATH: pip install -e .[dev] first" >&2; return 1; }
    return 0
  fi
  [[ -f requirements-lock.txt ]] && lock=(-c requirements-lock.txt)
  want=$(cat pyproject.toml requirements-lock.txt 2>/dev/null | sha256sum | cut -d' ' -f1)
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  echo "==> setting up $VENV (pip install ${lock[*]} -e .[dev])"
  [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV" || return 1
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null || return 1
  # ./kernel: the "Python (imgclf)" kernelspec, which an editable install does not install
  "$VENV/bin/python" -m pip install -q "${lock[@]}" -e ".[dev]" ./kernel || return 1
  "$VENV/bin/jupyter" kernelspec list 2>/dev/null | grep -q "^ *imgclf " \
    || { echo "the imgclf kernel was not installed into $VENV/share/jupyter/kernels" >&2; return 1; }
  echo "$want" >"$stamp"
}

activate() {
  ensure_venv || die "could not set up the environment in $VENV"
  if [[ "${IMGCLF_NO_VENV:-0}" != 1 ]]; then
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
  fi
}

readme() {
  # regenerate README.md's result blocks; say "updated" only when the file changed
  local path=README.md before after out
  [[ $# -gt 0 && "$1" != -* ]] && path=$1
  [[ -f "$path" ]] || die "readme: no file $path"
  before=$(sha256sum "$path" | cut -d' ' -f1)
  out=$(python -m imgclf.reports readme "$@" 2>&1) || { echo "$out" >&2; exit 1; }
  after=$(sha256sum "$path" | cut -d' ' -f1)
  if [[ "$before" == "$after" ]]; then
    echo "$path: unchanged (its result blocks already match results/)"
  else
    echo "$path: updated (result blocks regenerated from results/)"
  fi
}

failure_summary() {
  # the error of a failed notebook: the first error output of the executed notebook, else the
  # exception line of papermill's log
  python - "$1" "$2" <<'PYEOF'
import json, re, sys
executed, log = sys.argv[1:3]
try:
    nb = json.load(open(executed))
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and out.get("ename") != "PapermillExecutionError":
                where = cell.get("execution_count")
                msg = "\n      ".join(str(out.get("evalue", "")).splitlines()[:6])
                print(f"{out['ename']}: {msg}  (cell In [{where}])" if where else f"{out['ename']}: {msg}")
                sys.exit(0)
except (OSError, ValueError):
    pass
try:
    lines = open(log, errors="replace").read().splitlines()
except OSError:
    lines = []
exc = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Spent|Died)\w*):( .*|$)")
hits = [l for l in lines if exc.match(l) and not l.startswith("papermill.exceptions.PapermillExecutionError")]
print(hits[-1] if hits else (lines[-1] if lines else "no output"))
PYEOF
}

ensure_jax() {
  # the JAX backend in .venv (the [jax] extra), installed once
  local lock=()
  [[ -f requirements-lock.txt ]] && lock=(-c requirements-lock.txt)
  python -c "import jax" 2>/dev/null || python -m pip install -q "${lock[@]}" "jax>=0.4.30" || die "could not install jax"
}

# what gpu-check brings to a machine that has JAX but no network and no TensorFlow (Python 3.12 there)
GPU_WHEELS=(keras==3.15.1 namex==0.1.0 optree==0.20.0 cma==4.5.0 deap==1.4.4)

case "${1:-}" in
  -h|--help|help) usage; exit 0 ;;
  wheels)
    mkdir -p .whl
    exec "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d .whl "${GPU_WHEELS[@]}" ;;
  gpu-check)
    shift
    export KERAS_BACKEND=${KERAS_BACKEND:-jax}
    if [[ ! -x "$VENV/bin/python" && -d .whl ]]; then
      # a lent GPU machine: its own python3 (JAX with CUDA) plus the carried wheels, nothing installed
      site=${TMPDIR:-/tmp}/imgclf-site
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl \
        || die "gpu-check: could not install the wheels in .whl/ (./run_all.sh wheels makes them)"
      export PYTHONPATH="$site:$ROOT/lib${PYTHONPATH:+:$PYTHONPATH}"
      exec python3 -m imgclf.gpucheck "$@"
    fi
    activate; ensure_jax; exec python -m imgclf.gpucheck "$@" ;;
  test) shift; activate; [[ "${KERAS_BACKEND:-tensorflow}" == jax ]] && ensure_jax; exec python -m pytest "$@" ;;
  check) shift; activate; exec python -m imgclf.browser --reports "$REPORTS" "$@" ;;
  publish) shift; activate; exec python -m imgclf.reports publish --reports "$REPORTS" "$@" ;;
  reproduce) shift; [[ $# -ge 1 ]] || die "reproduce needs a notebook number, e.g. ./run_all.sh reproduce 02"
    activate; exec python -m imgclf.reports reproduce --reports "$REPORTS" "$@" ;;
  bank|restore) cmd=$1; shift; activate; exec python -m imgclf.reports "$cmd" --reports "$REPORTS" "$@" ;;
  readme) shift; activate; readme "$@"; exit ;;
esac

PROFILE=smoke
BUDGET=""
BACKEND=${KERAS_BACKEND:-tensorflow}
SELECT=()
PM_ARGS=()   # extra papermill arguments (parameters)
OVERRIDES=0  # parameters set on the command line: such a paper run is not published automatically
# a value for an option: present and not the next option ($2 of the caller)
value() { [[ $# -ge 2 && -n "$2" && "$2" != -* ]] || die "$1 needs a value: $3 (see --help)"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --profile|--budget)
      what="smoke or paper"; [[ "$1" == --budget ]] && what="minutes per notebook, e.g. --budget 8"
      value "$1" "${2:-}" "$what"
      if [[ "$1" == --profile ]]; then PROFILE="$2"; else PM_ARGS+=(-p budget_minutes "$2"); BUDGET="$2"; fi
      shift 2 ;;
    --profile=*) PROFILE="${1#*=}"; [[ -n "$PROFILE" ]] || die "--profile needs a value: smoke or paper"; shift ;;
    --budget=*) [[ -n "${1#*=}" ]] || die "--budget needs a value"; PM_ARGS+=(-p budget_minutes "${1#*=}"); BUDGET="${1#*=}"; shift ;;
    --no-reuse) PM_ARGS+=(-p reuse_runs False); shift ;;
    --backend) value "$1" "${2:-}" "tensorflow, jax or torch"; BACKEND="$2"; shift 2 ;;
    -p) [[ $# -ge 3 && -n "$2" && "$2" != -* ]] || die "-p needs a parameter name and a value: -p NAME VALUE (see --help)"
        PM_ARGS+=(-p "$2" "$3"); OVERRIDES=1; shift 3 ;;
    -y) [[ $# -ge 2 && -n "$2" ]] || die "-y needs a YAML mapping of parameters, e.g. -y 'seeds: [0, 1]'"
        PM_ARGS+=(-y "$2"); OVERRIDES=1; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) SELECT+=("$1"); shift ;;
  esac
done
# smoke, paper, or a profile a paper defines (03: cpu32, 04: cpu4000); the notebook refuses a name its paper lacks
[[ "$PROFILE" =~ ^[A-Za-z0-9_-]+$ ]] || die "--profile must be a profile name (smoke, paper, cpu32...), got '$PROFILE'"
[[ "$BACKEND" =~ ^(tensorflow|jax|torch)$ ]] || die "--backend must be tensorflow, jax or torch, got '$BACKEND'"
if [[ "$REPORTS" != "$ROOT/reports" ]]; then
  PM_ARGS+=(-p reports_root "$REPORTS")
fi
# the per-cell timeout catches a hung kernel; it must outlast a cell's legitimate work (a budget slice
# stops at its next checkpoint after BUDGET minutes)
if [[ -n "${IMGCLF_TIMEOUT:-}" ]]; then
  TIMEOUT=$IMGCLF_TIMEOUT
elif [[ -n "$BUDGET" ]]; then
  [[ "$BUDGET" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--budget must be a number of minutes, got '$BUDGET'"
  TIMEOUT=$(awk -v b="$BUDGET" 'BEGIN { printf "%d", b * 60 + 3600 }')
elif [[ "$PROFILE" == smoke ]]; then
  TIMEOUT=3600
else
  TIMEOUT=86400
fi
activate
export KERAS_BACKEND=$BACKEND  # the notebooks' kernels inherit it
[[ "$BACKEND" == jax ]] && ensure_jax

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
  # another run of this notebook (JupyterLab, a second run_all.sh) holds its folder: leave its log alone
  if ! python -m imgclf.locks check "$REPORTS/$name"; then
    echo "    NOT STARTED: wait for the other run to finish"; failed=1; continue
  fi
  start=$(date +%s)
  log="$REPORTS/logs/$name.$PROFILE.log"
  executed="$REPORTS/executed/$name.$PROFILE.ipynb"  # one per profile: a smoke run keeps the paper one
  rm -f "$executed"
  # the complete output (library logging, progress bars) goes to the log; the HTML gets a cleaned copy
  shown=""
  if env -u MPLBACKEND papermill -k imgclf --execution-timeout "$TIMEOUT" --log-output --no-progress-bar \
       -y "profile: $PROFILE" "${PM_ARGS[@]}" "$nb" "$executed" >"$log" 2>&1; then
    status=ok
  else
    why=$(failure_summary "$executed" "$log")
    if [[ "$why" == PartialRun:* ]]; then
      # the notebook stopped itself at a spent budget after finishing its report as partial: not a failure
      status=ok; shown=partial
      echo "    stopped early: ${why#PartialRun: }"
      echo "    (to go on from another clone: ./run_all.sh bank --profile $PROFILE ${name%%_*}, commit results/, there ./run_all.sh restore ${name%%_*})"
    else
      status=failed; failed=1
      echo "    FAILED: $why"
      echo "    (the whole output: $log)"
    fi
  fi
  secs=$(( $(date +%s) - start ))
  if [[ -f "$executed" ]]; then
    python -m imgclf.render "$executed" "$REPORTS/html" "$REPORTS/$name" >>"$log" 2>&1 \
      || echo "    (HTML rendering failed: see $log)"
  fi
  python -m imgclf.reports status --reports "$REPORTS" "$name" "$status" "$secs" "$PROFILE" "$log"
  echo "    ${shown:-$status} in ${secs}s"
  # the published profiles are one list, imgclf.reports.status.PUBLISHED_PROFILES
  if [[ "$status" == ok && $OVERRIDES == 0 ]] && python -c "import sys; from imgclf.reports.status import \
PUBLISHED_PROFILES as P; sys.exit(sys.argv[1] not in P)" "$PROFILE"; then
    python -m imgclf.reports publish --reports "$REPORTS" --profile "$PROFILE" "$name" || echo "    (publishing to results/ failed)"
  fi
done
if [[ $ran == 0 ]]; then
  echo "run_all.sh: no notebook in notebooks/ matches: ${SELECT[*]}" >&2
  exit 2
fi
python -m imgclf.reports build --reports "$REPORTS" >/dev/null
echo "==> $REPORTS/index.html"
exit $failed
