#!/usr/bin/env bash
# A second, shorter sitting on the GPU machine: the CUDA-graph tests after the replay-stream
# fix, beside the gallery's long variants on Fashion-MNIST at their default lengths (four at
# a time on the one GPU). Results to $OUT (session2.log, pytest2.log, gallery2.tgz).
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/g
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg PYTHONPATH=$PWD TINYGAN_DATA=$PWD/.devdata
START=$(date +%s)
log() { echo "[$(( $(date +%s) - START )) s] $*" | tee -a "$OUT/session2.log"; }
log "gallery (Fashion-MNIST) and the graph tests"
( printf '%s\n' wgan-fashion-mnist-cuda wgan-gp-fashion-mnist-cuda cgan-fashion-mnist-cuda \
    sagan-fashion-mnist-cuda |
  xargs -P 4 -I{} bash -c 'OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 TINYGAN_NUM_THREADS=1 \
    timeout $(( '"$START"' + ${GALLERY_S:-275} - $(date +%s) )) \
    python3 benchmarks/gallery/gallery.py run {} >/tmp/g/{}.log 2>&1;
    echo "{}: exit $?" >>/tmp/g/exits.log' ) &
GALLERY=$!
timeout 60 python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda_graphs.py \
    tests/test_cuda_random.py "tests/test_bench.py" -k "graph or cuda or Philox or philox" \
    >"$OUT/pytest2.log" 2>&1
log "graph tests: exit $? ($(tail -1 "$OUT/pytest2.log"))"
wait $GALLERY
cat /tmp/g/exits.log >>"$OUT/session2.log" 2>/dev/null
tar czf "$OUT/gallery2.tgz" --exclude=checkpoints --exclude='*.gif' /tmp/g \
    $(ls -d benchmarks/gallery/runs/*-cuda benchmarks/gallery/*-cuda.png 2>/dev/null) 2>/dev/null
log "end"
