"""Training throughput: lmforge vs LLaMA-Factory 0.9.5 (and plain TRL), LoRA SFT on CPU.

Every configuration trains the built-in SmolLM2-135M-Instruct on the same alpaca data with the same
hyper-parameters: LoRA rank 8 (alpha 16, dropout 0) on all linear layers, chatml template,
cutoff_len 512, batch 2 x accumulation 4, lr 1e-4 cosine, seed 42, fp32, ``--steps`` steps (20).
Runs are interleaved (repeat r runs the configurations in reverse order of repeat r-1) so that
load from other processes on the machine spreads over all of them; every ratio printed compares
runs of this one invocation. Figures (see bench/_runner.py): non-padding tokens/s over steps 3..N,
the process tree's peak RSS, and command start → first step logged.

Configurations:
  llamafactory   ``llamafactory-cli train`` in .bench/venv (its default: gradient checkpointing on)
  lmforge-default ``lmforge train`` with the very YAML LLaMA-Factory gets (each tool's defaults:
                 LLaMA-Factory turns gradient checkpointing on, lmforge leaves it off)
  lmforge-same   ``lmforge train`` with the same config, gradient checkpointing on to match
  lmforge-best   ``lmforge train``, same loss per token: gradient checkpointing off + ``--best`` extras
  lmforge-lowmem ``lmforge train``, neat packing with gradient checkpointing on (memory-bound machines)
  trl            bench/trl_reference.py (SFTTrainer; gradient checkpointing on, as TRL defaults)

    .venv/bin/python bench/train_throughput.py                 # all, 1 repeat
    .venv/bin/python bench/train_throughput.py --repeats 2 --only llamafactory,lmforge-same
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _runner import (
    PEER_VENV,
    PROJECT_PY,
    ROOT,
    machine_line,
    peer_env,
    project_env,
    ratio,
    run_and_watch,
    versions,
    write_results,
)

BASE_CONFIGS = ("llamafactory", "lmforge-default", "lmforge-same", "lmforge-best", "lmforge-lowmem", "trl")
# "<lmforge config>-mmap": the same run with glibc's mmap threshold fixed at 128 KiB, what
# bench/proposals/malloc-mmap-threshold.diff makes `lmforge train` do for itself. Without it glibc
# raises the threshold as large tensors are freed and keeps ~1-2 GB of freed activations resident.
MMAP_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}
CONFIGS = (*BASE_CONFIGS, "lmforge-same-mmap", "lmforge-best-mmap", "lmforge-lowmem-mmap")
# lmforge-best: settings that change speed but not the loss of any token (per-sample attention is
# kept by neat packing's position restarts; length grouping only reorders batches).
BEST_EXTRAS: dict[str, object] = {"gradient_checkpointing": False, "neat_packing": True}
# lmforge-lowmem: neat packing, gradient checkpointing kept on (packed 512-token rows without
# checkpointing hold ~2.5 GB more activations).
LOWMEM_EXTRAS: dict[str, object] = {"gradient_checkpointing": True, "neat_packing": True}


def data_choice() -> tuple[Path, str, Path]:
    """The data engineer's demo set when present, else the generated bench set."""
    demo = ROOT / "data"
    if (demo / "alpaca_demo.json").exists() and (demo / "dataset_info.json").exists():
        return demo, "alpaca_demo", demo / "alpaca_demo.json"
    bench = ROOT / "bench" / "data"
    if not (bench / "alpaca_bench.json").exists():
        from make_data import main as make

        make()
    return bench, "alpaca_bench", bench / "alpaca_bench.json"


def common_config(model: str, out: Path, steps: int) -> dict:
    dataset_dir, dataset, _ = data_choice()
    return {
        "model_name_or_path": model,
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "lora",
        "lora_rank": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "lora_target": "all",
        "dataset": dataset,
        "dataset_dir": str(dataset_dir),
        "template": "chatml",
        "cutoff_len": 512,
        "overwrite_cache": True,
        "output_dir": str(out),
        "overwrite_output_dir": True,
        "logging_steps": 1,
        "save_strategy": "no",
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 4,
        "learning_rate": 1.0e-4,
        "lr_scheduler_type": "cosine",
        "max_steps": steps,
        "seed": 42,
        "bf16": False,
        "report_to": "none",
        "plot_loss": False,
        "include_num_input_tokens_seen": "non_padding",
    }


def command_for(name: str, model: str, work: Path, steps: int, best: dict) -> tuple[list[str], dict, Path]:
    if name.endswith("-mmap"):
        cmd, env, log = command_for(name.removesuffix("-mmap"), model, work / "mmap", steps, best)
        return cmd, {**env, **MMAP_ENV}, log
    out = work / name / "out"
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = common_config(model, out, steps)
    if name == "trl":
        _, _, data_file = data_choice()
        cmd = [
            str(PROJECT_PY),
            str(ROOT / "bench" / "trl_reference.py"),
            "--data",
            str(data_file),
            "--model",
            model,
            "--out",
            str(out),
            "--steps",
            str(steps),
            "--gradient-checkpointing",
        ]
        return cmd, project_env(), out / "trainer_log.jsonl"
    if name == "llamafactory":
        cfg["disable_gradient_checkpointing"] = False  # its default, written out
        cfg_path = work / name / "cfg.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return (
            [str(PEER_VENV / "bin" / "llamafactory-cli"), "train", str(cfg_path)],
            peer_env(),
            out / "trainer_log.jsonl",
        )
    if name == "lmforge-default":  # the very YAML LLaMA-Factory gets; each tool's own defaults apply
        return _lmforge_command(work / name, cfg)
    cfg["gradient_checkpointing"] = True
    cfg["template_checks"] = "off"  # pre-flight checks are a one-off user aid, not training work
    if name == "lmforge-best":
        cfg.update(best)
    if name == "lmforge-lowmem":
        cfg.update(LOWMEM_EXTRAS)
    return _lmforge_command(work / name, cfg)


def _lmforge_command(folder: Path, cfg: dict) -> tuple[list[str], dict, Path]:
    cfg_path = folder / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return (
        [str(ROOT / ".venv" / "bin" / "lmforge"), "train", str(cfg_path)],
        project_env(),
        Path(cfg["output_dir"]) / "trainer_log.jsonl",
    )


def builtin_model() -> str:
    import subprocess

    code = "from lmforge.models.builtin import builtin_model_dir; print(builtin_model_dir())"
    return subprocess.run([str(PROJECT_PY), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def summarise(results: dict[str, list[dict]]) -> dict[str, dict]:
    table = {}
    for name, runs in results.items():
        ok = [r for r in runs if r["rc"] == 0 and r["tokens_per_s"]]
        if not ok:
            table[name] = {"runs": len(runs), "failed": True}
            continue
        table[name] = {
            "runs": len(ok),
            "tokens_per_s": statistics.median(r["tokens_per_s"] for r in ok),
            "tokens_per_s_all": [round(r["tokens_per_s"], 1) for r in ok],
            "tokens_per_cpu_s": statistics.median(r["tokens_per_cpu_s"] or 0 for r in ok),
            "first_step_s": statistics.median(r["first_step_s"] for r in ok),
            "startup_s": statistics.median(r["startup_s"] or 0 for r in ok),
            "wall_s": statistics.median(r["wall_s"] for r in ok),
            "peak_rss_gb": statistics.median(r["peak_rss_gb"] for r in ok),
            "final_loss": ok[0]["losses"][-1],
            "losses_first5": [round(x, 4) for x in ok[0]["losses"][:5]],
        }
    return table


def print_table(table: dict[str, dict]) -> None:
    ref = table.get("llamafactory", {})
    print(
        f"\n{'config':<14} {'tok/s':>8} {'vs LF':>7} {'tok/cpu-s':>9} {'vs LF':>7} "
        f"{'1st step s':>10} {'vs LF':>7} {'startup s':>9} {'vs LF':>7} "
        f"{'peak RSS GB':>11} {'vs LF':>7} {'wall s':>7}  losses[:5]"
    )
    for name, row in table.items():
        if row.get("failed"):
            print(f"{name:<14} FAILED")
            continue
        print(
            f"{name:<14} {row['tokens_per_s']:>8.1f} {ratio(row['tokens_per_s'], ref.get('tokens_per_s')):>7} "
            f"{row['tokens_per_cpu_s']:>9.1f} {ratio(row['tokens_per_cpu_s'], ref.get('tokens_per_cpu_s')):>7} "
            f"{row['first_step_s']:>10.1f} {ratio(row['first_step_s'], ref.get('first_step_s')):>7} "
            f"{row['startup_s']:>9.1f} {ratio(row['startup_s'], ref.get('startup_s')):>7} "
            f"{row['peak_rss_gb']:>11.2f} {ratio(row['peak_rss_gb'], ref.get('peak_rss_gb')):>7} "
            f"{row['wall_s']:>7.1f}  {row['losses_first5']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--only",
        default="llamafactory,lmforge-default,lmforge-same,lmforge-best,trl",
        help=f"comma-separated subset of {CONFIGS}",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per run (OMP_NUM_THREADS); 0 = torch's default. 1 keeps runs "
        "comparable when other processes load the cores (spinning OpenMP threads collapse)",
    )
    parser.add_argument("--best", default=json.dumps(BEST_EXTRAS), help="JSON of lmforge-best's extra keys")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "train_throughput.json")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configurations {sorted(unknown)}; known: {CONFIGS}")
    if "llamafactory" in names and not (PEER_VENV / "bin" / "llamafactory-cli").exists():
        parser.error("no LLaMA-Factory environment: run bash bench/setup_peer.sh first")
    best = json.loads(args.best)
    model = builtin_model()
    results: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="lmforge-bench-") as tmp:
        for r in range(args.repeats):
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                work = Path(tmp) / f"r{r}"
                cmd, env, log = command_for(name, model, work, args.steps, best)
                if args.threads:
                    env = {**env, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
                res = run_and_watch(name, cmd, log, log.parent.parent / "console.txt", env=env)
                tps = f"{res.tokens_per_s:.1f}" if res.tokens_per_s else "n/a"
                print(
                    f"[{time.strftime('%H:%M:%S')}] repeat {r} {name}: rc={res.rc} wall={res.wall_s:.1f}s "
                    f"tok/s={tps} first={res.first_step_s} rss={res.peak_rss_gb:.2f}GB",
                    flush=True,
                )
                if res.rc:
                    print(res.log, file=sys.stderr)
                results[name].append(res.as_dict())
    table = summarise(results)
    print_table(table)
    payload = {
        "benchmark": "train_throughput",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "steps": args.steps,
        "threads": args.threads,
        "repeats": args.repeats,
        "best_extras": best,
        "machine": machine_line(),
        "lmforge_env": versions(PROJECT_PY, ["torch", "transformers", "peft", "trl", "datasets"]),
        "peer_env": versions(
            PEER_VENV / "bin" / "python", ["llamafactory", "torch", "transformers", "peft", "trl", "datasets"]
        ),
        "table": table,
        "runs": results,
    }
    write_results(args.results, payload)
    print(f"\n{payload['machine']}\nlmforge env: {payload['lmforge_env']}\npeer env: {payload['peer_env']}")
    print(f"results: {args.results}")


if __name__ == "__main__":
    main()
