#!/usr/bin/env bash
# The prepared GPU check of docs/distributed.md: a single-GPU DeepSpeed ZeRO-2 run and a bf16 run of
# two steps each on the built-in model (examples/quickstart.yaml, LoRA), then one line per run with
# its loss, step time and peak memory. Results go to $OUT (default gpu-check/); paste the summary
# into docs/distributed.md. Runs on CPU too (no nvidia-smi line, DeepSpeed over gloo): that is how
# it was checked before any GPU was lent.
#   bash bench/gpu_check.sh            # lmforge installed (make demo, or pip install 'lmforge[deepspeed]')
set -euo pipefail
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
LMFORGE=${LMFORGE:-lmforge}
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
fi
common=(examples/quickstart.yaml max_steps=2 logging_steps=1 save_steps=100 plot_loss=false overwrite_output_dir=true)

FORCE_TORCHRUN=1 NPROC_PER_NODE=1 "$LMFORGE" train "${common[@]}" deepspeed=ds_z2 output_dir="$OUT/ds_z2" \
  > "$OUT/ds_z2.log" 2>&1 || { tail -20 "$OUT/ds_z2.log"; exit 1; }
"$LMFORGE" train "${common[@]}" bf16=true output_dir="$OUT/bf16" > "$OUT/bf16.log" 2>&1 \
  || { tail -20 "$OUT/bf16.log"; exit 1; }

python3 - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
for run in ("ds_z2", "bf16"):
    logs = [json.loads(line) for line in (out / run / "trainer_log.jsonl").read_text().splitlines() if line.strip()]
    steps = [entry for entry in logs if "loss" in entry]
    last = steps[-1]
    memory = {key: last[key] for key in last if key.endswith("_gb") or key.endswith("_mb")}
    print(f"{run}: {len(steps)} steps, loss {steps[0]['loss']} -> {last['loss']}, "
          f"{last.get('tokens_per_sec', '?')} tokens/s at the last step, memory {memory}")
EOF
