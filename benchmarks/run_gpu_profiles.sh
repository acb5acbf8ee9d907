#!/usr/bin/env bash
# Run the real-data benchmarks U1 and U2 with --profile gpu on one GPU machine (designed
# for one H200 with 16 CPU cores: both together in under ~8 minutes) and write their
# sections of benchmarks/results.md plus benchmarks/results_u1.json / results_u2.json.
#
#   bash benchmarks/run_gpu_profiles.sh            # from anywhere; runs in the repo root
#   bash benchmarks/run_gpu_profiles.sh --epochs 6 # extra options go to both scripts
#
# Needs the shared data and weights at ../shared relative to the repository root (or set
# LABELBRIDGE_SHARED=/path/to/shared). Installs the package first when it is not
# importable: a CUDA build of torch already present is kept (pip sees torch>=2.4
# satisfied); torch==2.13.0 is installed only where no torch is present. Wheels in
# build/lbwheels (if any) are offered to pip, for machines without internet access.
# When $OUT is set (device runner), results, logs and figures are copied there too.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
START=$(date +%s)

echo "== python: $($PY --version 2>&1); nproc: $(nproc)"
if $PY -c 'import torch' 2>/dev/null; then
  CUDA=$($PY -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
  echo "== torch $($PY -c 'import torch; print(torch.__version__)') present, cuda available: $CUDA"
  HAVE_TORCH=1
else
  CUDA=0
  HAVE_TORCH=0
  echo "== torch not installed"
fi

if ! $PY -c 'import labelbridge, lightning, kornia' 2>/dev/null; then
  LINKS=()
  [ -d build/lbwheels ] && LINKS=(--find-links build/lbwheels)
  if [ "$HAVE_TORCH" = 1 ]; then
    echo "== installing labelbridge (keeping the installed torch)"
    $PY -m pip install -q "${LINKS[@]}" -e . || { echo "pip install failed"; exit 3; }
  else
    echo "== installing torch==2.13.0 and labelbridge"
    $PY -m pip install -q "${LINKS[@]}" torch==2.13.0 -e . || { echo "pip install failed"; exit 3; }
  fi
  CUDA=$($PY -c 'import torch; print(int(torch.cuda.is_available()))')
fi
if [ "$CUDA" != 1 ]; then
  echo "no CUDA device visible to torch: the gpu profile needs one" >&2
  exit 4
fi
SHARED_DIR=${LABELBRIDGE_SHARED:-../shared}
if [ ! -d "$SHARED_DIR/data/camvid" ] || [ ! -f "$SHARED_DIR/weights/espnetv2_s_2.0_city_1024x512.pth" ]; then
  echo "shared data/weights not found under $SHARED_DIR (set LABELBRIDGE_SHARED)" >&2
  exit 5
fi
$PY -c 'import torch; print("== GPU:", torch.cuda.get_device_name(0))'

mkdir -p benchmarks/_work
# Both benchmarks share the GPU (small models: neither fills it); each trains its three
# seeds concurrently (--profile gpu sets --jobs 3).
$PY -m benchmarks.u2_cityscapes_teacher --profile gpu "$@" > benchmarks/_work/u2_gpu.log 2>&1 &
PID2=$!
$PY -m benchmarks.u1_camvid_idd --profile gpu "$@" > benchmarks/_work/u1_gpu.log 2>&1 &
PID1=$!
wait $PID2; RC2=$?
wait $PID1; RC1=$?
echo "== U2 exit $RC2 (log benchmarks/_work/u2_gpu.log), U1 exit $RC1 (log benchmarks/_work/u1_gpu.log)"
echo "== total wall time: $(( $(date +%s) - START )) s"
tail -n 5 benchmarks/_work/u2_gpu.log benchmarks/_work/u1_gpu.log

if [ -n "${OUT:-}" ]; then
  cp benchmarks/results.md "$OUT/" 2>/dev/null
  cp benchmarks/results_u1.json benchmarks/results_u2.json "$OUT/" 2>/dev/null
  cp benchmarks/_work/u1_gpu.log benchmarks/_work/u2_gpu.log "$OUT/" 2>/dev/null
  tar -czf "$OUT/figures.tar.gz" benchmarks/figures 2>/dev/null
fi
[ "$RC1" = 0 ] && [ "$RC2" = 0 ]
