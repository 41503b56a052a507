#!/usr/bin/env bash
# One sitting on a GPU machine (one NVIDIA GPU, 16 cores), everything that needs it, in order
# of what it settles, each part capped so that the whole ends inside its time:
#   1. the machine; CuPy, NCCL, MPI (a `pip install` of what travels in .whl/)
#   2. the GPU and NCCL tests, beside the gallery's long variants on the MNIST sample at
#      their default lengths on the GPU, four at a time
#   3. the CPU at 4, 8 and 16 threads beside PyTorch, and dcgan-mnist on 1-16 processes
#   4. the GPU step, eager and graphed, beside PyTorch (what a CUDA graph can capture here
#      is probed in 2)
# Results go to $OUT (session.log, pytest.log, cpu-16core.jsonl, gpu-bench.jsonl,
# gallery.tgz). Fashion-MNIST travels in .devdata/ (TINYGAN_DATA).
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg PYTHONPATH=$PWD TINYGAN_DATA=$PWD/.devdata
START=$(date +%s)
LIMIT=${LIMIT:-575}  # seconds for the whole script
since() { echo $(( $(date +%s) - START )); }
left() { echo $(( LIMIT - $(since) )); }
log() { echo "[$(since) s] $*" | tee -a "$OUT/session.log"; }

log "1. the machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  lscpu | grep -E "Model name|^CPU\(s\)|Thread|MHz" ; python3 --version
} >>"$OUT/session.log" 2>&1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir .whl/*.whl \
    >>"$OUT/session.log" 2>&1 || log "pip install failed"
python3 - >>"$OUT/session.log" 2>&1 <<'EOF'
import numpy, cupy, torch
from cupy.cuda import nccl
print("numpy", numpy.__version__, "cupy", cupy.__version__, "torch", torch.__version__,
      "nccl", getattr(nccl, "available", None), nccl.get_version() if nccl.available else "")
import tinygan.backend as b
print("tinygan sees cuda:", b.cuda_is_available(), b.cuda_unavailable_reason())
EOF
timeout 30 mpiexec -n 2 python3 -c "from mpi4py import MPI; c=MPI.COMM_WORLD; \
print(c.Get_rank(), c.Get_size(), MPI.Get_library_version().splitlines()[0])" \
    >>"$OUT/session.log" 2>&1 || log "mpiexec failed"

log "2. the GPU and NCCL tests, beside the gallery's long variants on the GPU"
mkdir -p /tmp/g
( printf '%s\n' wgan-mnist-cuda cgan-mnist-cuda wgan-gp-mnist-cuda sagan-mnist-cuda |
  xargs -P 4 -I{} bash -c 'OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 TINYGAN_NUM_THREADS=1 \
    timeout $(( '"$START"' + 270 - $(date +%s) )) \
    python3 benchmarks/gallery/gallery.py run {} >/tmp/g/{}.log 2>&1;
    echo "{}: exit $?" >>/tmp/g/exits.log' ) &
GALLERY=$!
timeout 150 python3 -m pytest -q -p no:cacheprovider -rs tests/test_gpu_parity.py \
    tests/test_nn_gpu.py tests/test_kernels.py tests/test_kernels_layout.py \
    tests/test_optim_kernels.py tests/test_cuda_random.py tests/test_cuda_graphs.py \
    tests/test_distributed.py tests/test_bench.py >"$OUT/pytest.log" 2>&1
log "GPU tests: exit $? ($(tail -1 "$OUT/pytest.log"))"
timeout 30 python3 benchmarks/cuda_graph_probe.py >>"$OUT/session.log" 2>&1
wait $GALLERY
cat /tmp/g/exits.log >>"$OUT/session.log" 2>/dev/null
tar czf "$OUT/gallery.tgz" --exclude=checkpoints --exclude='*.gif' /tmp/g \
    $(ls -d benchmarks/gallery/runs/*-cuda benchmarks/gallery/*-cuda.png 2>/dev/null) 2>/dev/null
log "gallery packed"

log "3. the CPU: 4, 8, 16 threads beside PyTorch; dcgan-mnist on 1-16 processes"
for cap in 4:55 8:45 16:45; do
  timeout ${cap#*:} python3 -m tinygan.bench all --compare torch --threads ${cap%:*} \
      --steps 4 --warmup 2 --json >>"$OUT/cpu-16core.jsonl" 2>>"$OUT/session.log"
  log "threads ${cap%:*}: exit $?"
done
timeout 45 python3 -m tinygan.bench dcgan-mnist --nproc 1 2 4 8 16 --steps 4 --warmup 2 \
    --json >>"$OUT/cpu-16core.jsonl" 2>>"$OUT/session.log"
log "processes: exit $?"

log "4. the GPU step, eager and graphed, beside PyTorch"
[ "$(left)" -gt 45 ] && timeout $(( $(left) - 40 )) python3 -m tinygan.bench all \
    --device cuda --compare torch --steps 30 --warmup 5 --json \
    >>"$OUT/gpu-bench.jsonl" 2>>"$OUT/session.log"
log "GPU bench eager done"
[ "$(left)" -gt 15 ] && timeout $(( $(left) - 5 )) python3 -m tinygan.bench all \
    --device cuda --only tinygan --cuda-graph --steps 30 --warmup 5 --json \
    >>"$OUT/gpu-bench.jsonl" 2>>"$OUT/session.log"
log "end"
