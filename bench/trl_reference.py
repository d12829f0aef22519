"""Plain TRL ``SFTTrainer`` LoRA SFT: the reference the two tools are compared against.

Runs in the project venv (trl 1.16). Same data and hyper-parameters as bench/train_throughput.py:
alpaca records rendered as chatml prompt/completion text (no system prompt, loss on the completion
only), LoRA rank 8 / alpha 16 on all linear layers, cutoff 512, batch 2 x accumulation 4, lr 1e-4
cosine, fp32 on CPU. Writes ``output_dir/trainer_log.jsonl`` (step, loss, num_input_tokens_seen)
so the harness reads it like the tools' own logs.

    .venv/bin/python bench/trl_reference.py --data data/alpaca_demo.json --out /tmp/trl --steps 20
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def chatml_records(path: Path) -> list[dict[str, str]]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for row in rows:
        query = row["instruction"] + ("\n" + row["input"] if row.get("input") else "")
        out.append(
            {
                "prompt": f"<|im_start|>user\n{query}<|im_end|>\n<|im_start|>assistant\n",
                "completion": row["output"],  # TRL appends the eos token, <|im_end|>
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    args = parser.parse_args()

    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    class JsonlLog(TrainerCallback):
        start = time.monotonic()

        def on_train_begin(self, targs, state, control, **kwargs):
            self.start = time.monotonic()

        def on_log(self, targs, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                row = {
                    "step": state.global_step,
                    "loss": logs["loss"],
                    "num_input_tokens_seen": state.num_input_tokens_seen,
                    "elapsed": time.monotonic() - self.start,
                }
                with (args.out / "trainer_log.jsonl").open("a") as handle:
                    handle.write(json.dumps(row) + "\n")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trainer_log.jsonl").unlink(missing_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype="float32")
    config = SFTConfig(
        output_dir=str(args.out),
        max_steps=args.steps,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=4,
        learning_rate=1e-4,
        lr_scheduler_type="cosine",
        max_length=512,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=42,
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=args.gradient_checkpointing,
        include_num_input_tokens_seen="non_padding",
        completion_only_loss=True,
        dataloader_pin_memory=False,
    )
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(chatml_records(args.data)),
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[JsonlLog()],
    )
    trainer.train()


if __name__ == "__main__":
    main()
