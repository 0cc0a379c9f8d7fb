#!/usr/bin/env bash
# The one prepared GPU check, for one call of at most ~9 minutes on a borrowed H100/H200 (nothing reachable from it).
#
# Phases, each under its own `timeout` inside one global budget (GPU_CHECK_BUDGET_S, default 510 s), so that a hang
# cannot eat the loan; a phase that fails or times out is recorded and the next one still runs:
#   env       nvidia-smi, python/torch/transformers/peft/lightning versions
#   pip       the wheels the GPU image lacks, from the carried folder ($WHEELS, default wheels/; made here by
#             benchmarks/fetch_wheels.sh), installed with --no-index
#   pytest    pytest -m gpu -q (tests/gpu: QLoRA on CUDA; FSDP and sglang skip themselves on one GPU)
#   gpu_grpo  benchmarks/gpu_grpo.py: Qwen2.5-VL-7B, random weights, QLoRA, stage-2 GRPO, group 8, 1,024 tokens
# Everything printed also goes to $OUT/<phase>.log; $OUT/status.json holds each phase's status (rewritten after
# every phase); gpu_grpo.py writes $OUT/gpu_grpo.json. The script always exits 0: read status.json.
# Environment: OUT, PYTHON (default python3), WHEELS (default wheels), GPU_CHECK_BUDGET_S (default 510),
# GPU_GRPO_ARGS (extra gpu_grpo.py flags).
#
#   bash benchmarks/gpu_check.sh             # on the GPU machine, from the repository root, OUT set by the tool
#   bash benchmarks/gpu_check.sh --dry-run   # here: pip as --dry-run, pytest -m gpu collects (and skips) only,
#                                            # gpu_grpo.py --dry-run (shrunk model on CPU); OUT defaults to a temp dir
set -u
DRY=0
[[ "${1:-}" == "--dry-run" ]] && DRY=1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 0
OUT=${OUT:-$(mktemp -d /tmp/gpu_check_XXXXXX)}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-wheels}
BUDGET=${GPU_CHECK_BUDGET_S:-510}
GRPO_ARGS=${GPU_GRPO_ARGS:-}  # extra gpu_grpo.py flags, e.g. "--steps 1 --warmup 0"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# Exactly what benchmarks/fetch_wheels.sh downloads (bitsandbytes; open_clip and its ftfy/wcwidth; jsonargparse
# with its signatures extra and omegaconf for cli.py; the graders and their parsers).
PACKAGES="bitsandbytes==0.50.2 open_clip_torch==3.3.0 jsonargparse[signatures]==4.53.0 omegaconf==2.4.0
  mathruler==0.1.0 pylatexenc==2.11 math-verify==0.9.0"
export DRY PY WHEELS PACKAGES
STATUS=()

log() { echo "[gpu_check $(date +%H:%M:%S) +$SECONDS s] $*" | tee -a "$OUT/gpu_check.log"; }

write_status() {
  local IFS=,
  printf '{"dry_run": %s, "budget_s": %s, "elapsed_s": %s, "phases": {%s}}\n' \
    "$([[ $DRY == 1 ]] && echo true || echo false)" "$BUDGET" "$SECONDS" "${STATUS[*]}" >"$OUT/status.json"
}

# phase NAME LIMIT_S COMMAND...: run it under timeout (cut to what the budget has left), tee'd to $OUT/NAME.log.
phase() {
  local name=$1 limit=$2 left rc state start
  shift 2
  left=$((BUDGET - SECONDS))
  ((limit > left)) && limit=$left
  if ((limit < 15)); then
    log "$name: skipped, ${left} s of the budget left"
    STATUS+=("\"$name\": {\"status\": \"skipped\", \"rc\": null, \"seconds\": 0, \"limit_s\": $limit}")
    write_status
    return
  fi
  log "$name: start (limit ${limit} s): $*"
  start=$SECONDS
  if declare -F "$1" >/dev/null; then  # a function of this script: timeout runs programs, so give it a bash
    set -- bash -c "$(declare -f "$1"); $1"
  fi
  timeout -k 10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  rc=${PIPESTATUS[0]}
  case $rc in
    0) state=ok ;;
    124 | 137) state=timeout ;;
    *) state=failed ;;
  esac
  log "$name: $state (rc $rc) after $((SECONDS - start)) s"
  STATUS+=("\"$name\": {\"status\": \"$state\", \"rc\": $rc, \"seconds\": $((SECONDS - start)), \"limit_s\": $limit}")
  write_status
}

env_report() {
  nvidia-smi || echo "nvidia-smi: not available"
  "$PY" - <<'EOF'
import importlib, platform, sys
print("python", sys.version.split()[0], platform.machine())
for name in ("torch", "transformers", "peft", "lightning", "accelerate", "tokenizers", "bitsandbytes", "open_clip",
             "jsonargparse", "timm", "torchvision"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as err:  # not installed yet (pip comes next) or broken
        print(name, "missing:", type(err).__name__, err)
import torch
print("cuda available", torch.cuda.is_available(), "| device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
EOF
}

install_wheels() {
  if [[ ! -d $WHEELS ]]; then
    echo "no $WHEELS/ folder: run benchmarks/fetch_wheels.sh here and carry it"
    return 1
  fi
  du -sh "$WHEELS"
  if ((DRY)); then
    # shellcheck disable=SC2086  # PACKAGES is a word list
    "$PY" -m pip install --dry-run --no-index --find-links "$WHEELS" $PACKAGES
    return
  fi
  # With dependency checks first (they are already in the image); if the resolver refuses, plain --no-deps.
  # shellcheck disable=SC2086
  "$PY" -m pip install -q --no-index --no-cache-dir --find-links "$WHEELS" $PACKAGES && return
  echo "pip with dependencies failed; installing the wheels alone (--no-deps)"
  "$PY" -m pip install -q --no-index --no-deps --no-cache-dir "$WHEELS"/*.whl
}

log "start: dry_run=$DRY out=$OUT budget=${BUDGET} s root=$ROOT"
write_status
phase env 30 env_report
if ((DRY)) && [[ ! -d $WHEELS ]]; then
  log "pip: skipped (dry run, no $WHEELS/ folder)"
  STATUS+=("\"pip\": {\"status\": \"skipped\", \"rc\": null, \"seconds\": 0, \"limit_s\": 0}")
  write_status
else
  phase pip 90 install_wheels
fi
if ((DRY)); then  # no CUDA here: collect the gpu tests only (they would skip)
  phase pytest 60 "$PY" -m pytest -m gpu -q -p no:cacheprovider --collect-only tests/gpu
else
  phase pytest 120 "$PY" -m pytest -m gpu -q -p no:cacheprovider -o faulthandler_timeout=100 tests/gpu
fi
# gpu_grpo gets the rest of the budget; its own --budget-s (45 s less: report and planner) stops before a step
# that would not fit.
left=$((BUDGET - SECONDS))
if ((DRY)); then
  # shellcheck disable=SC2086  # GRPO_ARGS is a word list
  phase gpu_grpo "$left" "$PY" benchmarks/gpu_grpo.py --dry-run --out "$OUT" --budget-s $((left - 45)) $GRPO_ARGS
else
  # shellcheck disable=SC2086
  phase gpu_grpo "$left" "$PY" benchmarks/gpu_grpo.py --out "$OUT" --budget-s $((left - 45)) --workdir /tmp $GRPO_ARGS
fi
log "done: $OUT/status.json"
cat "$OUT/status.json"
# The headline figures again, last, so that they are in the tail of the output whatever came before.
timeout 15 "$PY" - "$OUT/gpu_grpo.json" <<'EOF' 2>&1 | tee -a "$OUT/gpu_check.log"
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as err:
    sys.exit(f"summary: no gpu_grpo.json ({err})")
keys = ("mode", "status", "device", "error", "shapes", "timings", "memory_after_load_gb", "memory_groups",
        "rollout_tokens_per_s", "training_tokens_per_s", "adapters_changed", "max_allocated_gb_at_error")
print("summary:", json.dumps({k: r[k] for k in keys if k in r}, default=str))
mean = r.get("step_time_s", {}).get("mean", {})
print("summary: step mean s", json.dumps({k: round(v, 2) for k, v in mean.items()}))
print("summary: planner", json.dumps(r.get("planner")))
EOF
exit 0
