"""Memory-saving optimizers vs AdamW: optimizer state and tokens/s, full fine-tuning of the built-in model.

Each configuration runs ``lmforge train`` on the built-in SmolLM2-135M-Instruct (fp32, full
fine-tuning) with the same data and hyper-parameters: chatml template, cutoff_len 256, batch 2,
lr 1e-5 cosine, seed 42, ``--steps`` steps (6), no checkpoints. Figures, from each run's own
trainer_log.jsonl and the harness (bench/_runner.py):

- ``state_mb``: the largest ``optimizer_state_mb`` logged (sum of the optimizer's state tensor
  bytes; BAdam's varies as blocks switch and their moments restart);
- ``tokens_per_s``: non-padding tokens/s over steps 3..N; ``peak_rss_gb``: the process tree's peak.

Every ratio compares runs of this one invocation (the machine may be shared: throughput moves
with its load, state sizes do not).

    OMP_NUM_THREADS=1 .venv/bin/python bench/optimizers.py              # all
    OMP_NUM_THREADS=1 .venv/bin/python bench/optimizers.py --only adamw,galore --steps 4
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _runner import ROOT, machine_line, project_env, ratio, read_log, run_and_watch, versions, write_results
from train_throughput import builtin_model, data_choice

CONFIGS: dict[str, dict[str, object]] = {
    "adamw": {},
    "adamw_8bit": {"optim": "adamw_bnb_8bit"},
    "galore": {"use_galore": True, "galore_rank": 16},
    "galore_layerwise": {"use_galore": True, "galore_rank": 16, "galore_layerwise": True},
    "apollo": {"use_apollo": True, "apollo_rank": 16},
    "apollo_mini": {"use_apollo": True, "apollo_rank": 1, "apollo_scale_type": "tensor", "apollo_scale": 128},
    "badam": {"use_badam": True, "badam_switch_interval": 50},
    "muon": {"use_muon": True},
    "adalomo": {"optim": "adalomo", "learning_rate": 1e-3},
}


def config_for(name: str, model: str, out: Path, steps: int) -> dict[str, object]:
    dataset_dir, dataset, _ = data_choice()
    return {
        "model_name_or_path": model, "finetuning_type": "full", "dataset": dataset,
        "dataset_dir": str(dataset_dir), "template": "chatml", "cutoff_len": 256, "output_dir": str(out),
        "overwrite_output_dir": True, "logging_steps": 1, "save_strategy": "no",
        "per_device_train_batch_size": 2, "learning_rate": 1.0e-5, "lr_scheduler_type": "cosine",
        "max_steps": steps, "seed": 42, "bf16": False, "report_to": "none", "plot_loss": False,
        "template_checks": "off", "include_num_input_tokens_seen": "non_padding", **CONFIGS[name],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--only", default=",".join(CONFIGS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "optimizers.json")
    ns = parser.parse_args()
    names = [n for n in ns.only.split(",") if n]
    model = builtin_model()
    rows: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="lmforge-bench-optim-") as tmp:
        for name in names:
            folder = Path(tmp) / name
            folder.mkdir()
            cfg_path = folder / "cfg.yaml"
            cfg_path.write_text(yaml.safe_dump(config_for(name, model, folder / "out", ns.steps), sort_keys=False))
            log = folder / "out" / "trainer_log.jsonl"
            cmd = [str(ROOT / ".venv" / "bin" / "lmforge"), "train", str(cfg_path)]
            result = run_and_watch(name, cmd, log, folder / "console.txt", env=project_env())
            states = [float(r["optimizer_state_mb"]) for r in read_log(log) if "optimizer_state_mb" in r]
            rows[name] = {**result.as_dict(), "state_mb": max(states) if states else None}
            shutil.rmtree(folder / "out", ignore_errors=True)  # 0.5 GB of fp32 weights per run
            print(f"{name}: rc={result.rc} state={rows[name]['state_mb']} MB tokens/s={result.tokens_per_s}")
            if result.rc:
                print(result.log, flush=True)
            write_results(ns.out, {"machine": machine_line(), "steps": ns.steps, "runs": rows})  # kept if killed
    base = rows.get("adamw", {})
    print(f"\n{machine_line()}; {versions(ROOT / '.venv' / 'bin' / 'python', ['torch', 'transformers'])}")
    print("| optimizer | state MB | vs AdamW | tokens/s | vs AdamW | peak RSS GB | loss step 1 → N |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, row in rows.items():
        losses = row.get("losses") or []
        trend = f"{losses[0]:.3f} → {losses[-1]:.3f}" if losses else "n/a"
        state, tps, rss = row["state_mb"], row.get("tokens_per_s"), row.get("peak_rss_gb")
        print(
            f"| {name} | {state if state is not None else 'n/a'} | {ratio(state, base.get('state_mb'))} "
            f"| {f'{tps:.0f}' if tps else 'n/a'} | {ratio(tps, base.get('tokens_per_s'))} "
            f"| {f'{rss:.2f}' if rss else 'n/a'} | {trend} |"
        )
    write_results(ns.out, {"machine": machine_line(), "steps": ns.steps, "runs": rows})
    print(f"\nwrote {ns.out}")


if __name__ == "__main__":
    main()
