#!/usr/bin/env bash
# The model benchmarks at the paper's scale on a lent GPU machine. Run from the repo root ON THE GPU
# MACHINE, with the wheels of benchmarks/device_wheels.sh carried in .cache/device-wheels:
#
#   bash benchmarks/device_check.sh    # writes $OUT/bench_batch_*.json + .txt (issue 9),
#                                      # $OUT/bench_model_gpu.{txt,json} (issue 2), $OUT/device_check.log
#
# That machine (KINDS.md): python3 = CPython 3.12 with torch+CUDA, no network, no registry. Our pinned
# transformers/peft/pydantic come from the carried wheels into /tmp/site (first on PYTHONPATH); torch
# is the machine's own. Steps: GPU facts, environment check, the batch benchmark of issue 9 (7B
# architecture, random weights, bf16, 24x476x868 clips: stock per-window attention at batch 1 against
# the one-call attention at batches 1/2/4/8, training steps with and without gradient checkpointing,
# new-vs-stock equivalence in bf16; a few minutes), the single-clip forward benchmark of issue 2, then,
# if time is left, the model tests on the CPU (capped). Each step has its own timeout; the whole
# script stays under about 8 minutes. Copy the JSON files into benchmarks/results/ afterwards.
set -uo pipefail
OUT=${OUT:-/tmp/tvau_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/device_check.log") 2>&1
export PYTHONUNBUFFERED=1 COLUMNS=200 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
       DO_NOT_TRACK=1 MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1
PY=${PY:-python3}
WHEELS=${TVAU_WHEELS:-.cache/device-wheels}
# What is measured (defaults: the paper's setting). Overridable for a dry run on a CPU machine, e.g.
# TVAU_CHECK_ARCH=tiny TVAU_CHECK_DEVICE=cpu TVAU_CHECK_DTYPE=float32 PY=.venv/bin/python OUT=/tmp/o bash ...
ARCH=${TVAU_CHECK_ARCH:-qwen2.5-vl-7b}
DEVICE=${TVAU_CHECK_DEVICE:-cuda}
DTYPE=${TVAU_CHECK_DTYPE:-bfloat16}
t0=$SECONDS
step() { echo; echo "=== $* (t=$((SECONDS - t0)) s)"; }

step "GPU"
nvidia-smi || echo "nvidia-smi failed"
uname -m; $PY --version; command -v $PY

step "carried wheels -> /tmp/site"
if ls $WHEELS/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        $WHEELS/*.whl || echo "WARNING: wheel install failed; trying the machine's own packages"
    export PYTHONPATH=/tmp/site:$PWD
else
    echo "WARNING: no $WHEELS/*.whl (run benchmarks/device_wheels.sh here and carry $WHEELS);" \
         "trying the machine's own packages"
    export PYTHONPATH=$PWD
fi

step "environment"
$PY - <<'PYEOF' || { echo "FATAL: environment check failed"; exit 3; }
import importlib, importlib.metadata as md
for name in ("torch", "transformers", "peft", "pydantic", "tokenizers", "safetensors", "rich", "yaml", "numpy"):
    mod = importlib.import_module(name)
    try:
        v = md.version({"yaml": "pyyaml"}.get(name, name))
    except md.PackageNotFoundError:
        v = getattr(mod, "__version__", "?")
    print(f"{name:13s} {v:20s} {getattr(mod, '__file__', '')}")
import torch
print("cuda", torch.cuda.is_available(), torch.version.cuda,
      torch.cuda.get_device_name() if torch.cuda.is_available() else "-")
from tvau.model import attention
print("vision attention: torch varlen_attn", attention.varlen_available(), "| flash-attn", attention.flash_attn_available(),
      "| auto on cuda/bf16 ->", attention.resolve("auto", "cuda", torch.bfloat16) if torch.cuda.is_available() else "-")
import tvau.model.random_backbone, tvau.model.tvau, tvau.config  # noqa: E401  (our code imports here)
print("tvau imports ok")
PYEOF

step "batch benchmark (issue 9): $ARCH, $DEVICE, $DTYPE, ${TVAU_BENCH_CLIP:-24x476x868}"
TVAU_BENCH_ARCH=$ARCH TVAU_BENCH_DEVICE=$DEVICE TVAU_BENCH_DTYPE=$DTYPE \
TVAU_BENCH_CLIP=${TVAU_BENCH_CLIP:-24x476x868} TVAU_BENCH_BATCHES=${TVAU_BENCH_BATCHES:-1,2,4,8} \
TVAU_BENCH_BEFORE=${TVAU_BENCH_BEFORE:-sdpa} TVAU_BENCH_REPEATS=${TVAU_BENCH_BATCH_REPEATS:-3} TVAU_BENCH_WARMUP=1 \
TVAU_BENCH_NEW_TOKENS=${TVAU_BENCH_NEW_TOKENS:-32} TVAU_BENCH_RESULTS="$OUT" \
    timeout ${TVAU_BATCH_TIMEOUT:-300} $PY -m benchmarks batch 2>&1 | grep --line-buffered -v "^Loading weights" \
    | tee "$OUT/bench_batch_gpu.txt"
rc=${PIPESTATUS[0]}
echo "batch benchmark exit status: $rc"

step "forward benchmark (issue 2): $ARCH, $DEVICE, $DTYPE, ${TVAU_BENCH_CLIP:-24x476x868}"
TVAU_BENCH_ARCH=$ARCH TVAU_BENCH_DEVICE=$DEVICE TVAU_BENCH_DTYPE=$DTYPE \
TVAU_BENCH_CLIP=${TVAU_BENCH_CLIP:-24x476x868} TVAU_BENCH_REPEATS=${TVAU_BENCH_REPEATS:-10} TVAU_BENCH_WARMUP=2 \
TVAU_BENCH_JSON="$OUT/bench_model_gpu.json" \
    timeout 150 $PY -m benchmarks model 2>&1 | grep --line-buffered -v "^Loading weights" | tee "$OUT/bench_model_gpu.txt"
echo "forward benchmark exit status: ${PIPESTATUS[0]}"

# CPU tests of the model package, only while the whole script stays under ~8 minutes.
left=$((${TVAU_CHECK_BUDGET_S:-470} - (SECONDS - t0)))
if [ "${TVAU_DEVICE_TESTS:-1}" = 1 ] && [ "$left" -gt 40 ]; then
    step "pytest tests/model on the CPU (cap ${left} s)"
    CUDA_VISIBLE_DEVICES= timeout "$left" $PY -m pytest -q -x -p no:cacheprovider tests/model \
        2>&1 | tail -15 || echo "tests: stopped or failed (see above)"
else
    step "pytest skipped (time left ${left} s)"
fi
step "done"
exit $rc
