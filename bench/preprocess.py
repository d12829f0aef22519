"""Preprocessing throughput: records/s to load, convert, tokenize and mask N alpaca records.

lmforge: ``lmforge.data.pipeline.build_datasets`` (project venv). LLaMA-Factory 0.9.5: its own
``llamafactory.data.get_dataset`` (peer venv). Both read the same JSON file (the alpaca demo set
replicated to ``--records``, 50k), render with the chatml template, cut at 512 tokens, mask the
prompt, and write the tokenized set to disk (lmforge always caches it; LLaMA-Factory is given a
``tokenized_path`` so it does the same). Both get ``--workers`` processes and a fresh, empty
``HF_DATASETS_CACHE``. Timed: the call alone (imports and the tokenizer load are not counted).
Runs alternate between the tools ``--repeats`` times; the medians and their ratio are printed.
``--lmforge-src DIR`` adds a third side, lmforge imported from DIR (a copy of src/ with a proposed
patch applied, e.g. bench/proposals/*.diff), to measure a proposal before it lands.

    .venv/bin/python bench/preprocess.py --records 50000 --workers 2 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PY = ROOT / ".venv" / "bin" / "python"
PEER_PY = ROOT / ".bench" / "venv" / "bin" / "python"


def flat_config(data_dir: Path, out: Path, workers: int, model: str) -> dict:
    return {
        "model_name_or_path": model,
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "lora",
        "dataset": "bench_alpaca",
        "dataset_dir": str(data_dir),
        "template": "chatml",
        "cutoff_len": 512,
        "preprocessing_num_workers": workers,
        "overwrite_cache": True,
        "output_dir": str(out / "out"),
        "report_to": "none",
        "bf16": False,
    }


def side_lmforge(cfg: dict) -> dict:
    from lmforge.config import build_config
    from lmforge.data.pipeline import build_datasets
    from lmforge.data.templates import get_template
    from lmforge.models.tokenizer import load_tokenizer

    config = build_config({**cfg, "template_checks": "off"})
    tokenizer = load_tokenizer(config.model)
    template = get_template(config.data.template, tokenizer)
    start = time.perf_counter()
    data = build_datasets(config, tokenizer, template)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": len(data.train), "tokens": sum(map(len, data.train["input_ids"]))}


def side_llamafactory(cfg: dict, out: Path) -> dict:
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    args = {**cfg, "tokenized_path": str(out / "lf_tokenized"), "lora_target": "all"}
    model_args, data_args, training_args, _, _ = get_train_args(args)
    module = load_tokenizer(model_args)
    template = get_template_and_fix_tokenizer(module["tokenizer"], data_args)
    start = time.perf_counter()
    data = get_dataset(template, model_args, data_args, training_args, stage="sft", **module)
    seconds = time.perf_counter() - start
    train = data["train_dataset"]
    return {"seconds": seconds, "rows": len(train), "tokens": sum(map(len, train["input_ids"]))}


def make_data(records: int, folder: Path) -> None:
    source = ROOT / "data" / "alpaca_demo.json"
    if not source.exists():  # the data engineer's demo set is absent: the generated bench set
        sys.path.insert(0, str(ROOT / "bench"))
        from make_data import main as make

        make()
        source = ROOT / "bench" / "data" / "alpaca_bench.json"
    rows = json.loads(source.read_text(encoding="utf-8"))
    big = [rows[i % len(rows)] for i in range(records)]
    (folder / "bench_alpaca.json").write_text(json.dumps(big), encoding="utf-8")
    info = {
        "bench_alpaca": {
            "file_name": "bench_alpaca.json",
            "formatting": "alpaca",
            "columns": {"prompt": "instruction", "query": "input", "response": "output"},
        }
    }
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")


def run_side(side: str, cfg: dict, work: Path, patched_src: Path | None = None) -> dict:
    python = PEER_PY if side == "llamafactory" else PROJECT_PY
    cache = Path(tempfile.mkdtemp(prefix="hf-cache-", dir=work))
    env = {
        **os.environ,
        "HF_DATASETS_CACHE": str(cache),
        "DISABLE_VERSION_CHECK": "1",
        "LMFORGE_HOME": str(cache / "lmforge"),
    }
    if side == "lmforge-patched":
        env["PYTHONPATH"] = str(patched_src)
    worker = "llamafactory" if side == "llamafactory" else "lmforge"
    cmd = [str(python), __file__, "--side", worker, "--config", json.dumps(cfg), "--work", str(cache)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        sys.exit(f"{side} failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--lmforge-src", type=Path, help="also time lmforge imported from this src/ copy")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "preprocess.json")
    parser.add_argument("--side", choices=["lmforge", "llamafactory"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:  # worker mode, inside one tool's environment
        cfg = json.loads(args.config)
        result = side_lmforge(cfg) if args.side == "lmforge" else side_llamafactory(cfg, args.work)
        print(json.dumps(result))
        return

    model = subprocess.run(
        [str(PROJECT_PY), "-c", "from lmforge.models.builtin import builtin_model_dir; print(builtin_model_dir())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    sides = ["llamafactory", "lmforge"] + (["lmforge-patched"] if args.lmforge_src else [])
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="lmforge-prep-") as tmp:
        work = Path(tmp)
        make_data(args.records, work)
        cfg = flat_config(work, work, args.workers, model)
        for r in range(args.repeats):
            for side in sides if r % 2 == 0 else sides[::-1]:
                result = run_side(side, cfg, work, args.lmforge_src)
                result["records_per_s"] = args.records / result["seconds"]
                runs[side].append(result)
                print(
                    f"[{time.strftime('%H:%M:%S')}] repeat {r} {side}: {result['seconds']:.1f}s "
                    f"{result['records_per_s']:.0f} records/s rows={result['rows']} tokens={result['tokens']}",
                    flush=True,
                )
    med = {side: statistics.median(x["records_per_s"] for x in rs) for side, rs in runs.items()}
    print(f"\nrecords={args.records} workers={args.workers} repeats={args.repeats}")
    for side in sides:
        print(f"{side:<16} {med[side]:>9.0f} records/s  {med[side] / med['llamafactory']:.2f}x LLaMA-Factory")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    args.results.write_text(
        json.dumps(
            {
                "benchmark": "preprocess",
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "records": args.records,
                "workers": args.workers,
                "load_avg_at_end": load,
                "median_records_per_s": med,
                "ratio_vs_llamafactory": {side: med[side] / med["llamafactory"] for side in sides},
                "lmforge_src": str(args.lmforge_src) if args.lmforge_src else None,
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
