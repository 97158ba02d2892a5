#!/usr/bin/env bash
# Side-by-side benchmark of skepsis against PyTorch, Captum and Quantus (issue 10).
#
#   bench/run.sh [OUT_DIR] [extra arguments for `skepsis bench`, e.g. --repeats 5]
#
# 1. creates (or reuses) a Python virtual environment OUTSIDE the source tree,
#    ${SKEPSIS_BENCH_VENV:-$HOME/.cache/skepsis-bench/venv}, with bench/requirements.txt
#    from the Python package index (torch pulls its CUDA libraries: ~3 GB, once);
# 2. builds skepsis in release mode;
# 3. runs `skepsis --threads $THREADS bench --out OUT_DIR` (weights, inputs, outputs, timings);
# 4. runs bench/peer.py OUT_DIR with $THREADS torch threads: the equal-work check first
#    (exit 1 if the attributions differ), then the timings; prints the table and writes
#    OUT_DIR/table.md and OUT_DIR/peer.json.
#
# Environment: SKEPSIS_BENCH_VENV (venv path), SKEPSIS_BENCH_THREADS (default 2, the issue's
# setting), PYTHON (interpreter that creates the venv, default python3).
# Not part of CI: numbers are not tests. Existing output in OUT_DIR is replaced.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="${1:-$root/target/bench}"
shift || true
venv="${SKEPSIS_BENCH_VENV:-$HOME/.cache/skepsis-bench/venv}"
threads="${SKEPSIS_BENCH_THREADS:-2}"
python="${PYTHON:-python3}"

venv="$(realpath -m "$venv")"
case "$venv/" in
  "$root"/*) echo "run.sh: the venv must live outside the source tree ($venv)" >&2; exit 2 ;;
esac

# 1. The peer's environment; re-installed only when requirements.txt changed.
stamp="$venv/.skepsis-bench-requirements"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "run.sh: creating $venv" >&2
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
if ! cmp -s "$here/requirements.txt" "$stamp"; then
  echo "run.sh: installing bench/requirements.txt into $venv (torch is large; once)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi

# 2. skepsis.
(cd "$root" && cargo build --release -p skepsis)

# 3. skepsis' half: same thread count as the peer. RAYON_NUM_THREADS is set too, so that
#    every pool (also the one gemm may build) sees it.
RAYON_NUM_THREADS="$threads" "$root/target/release/skepsis" --threads "$threads" \
  bench --out "$out" --force "$@"

# 4. The peer's half. OMP/MKL thread counts match torch.set_num_threads.
OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" \
  "$venv/bin/python" "$here/peer.py" "$out" --threads "$threads"
