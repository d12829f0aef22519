"""Write data/general_demo.json: general questions answered by the built-in model itself.

Mixed into the quickstart next to identity.json, these answers hold the model's general behaviour
in place (it is trained on its own greedy answers, which barely moves it), so the LoRA learns the
new identity without answering every question with it. Answers that did not finish within the
token budget are left out, so the data never teaches the model to stop mid-sentence.

    .venv/bin/python data/make_general_data.py   # ~10 minutes on 2 CPU cores (160-token answers)
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lmforge.config import build_config
from lmforge.infer.engine import build_engine
from lmforge.infer.params import SamplingParams

QUESTIONS = [
    "What is the capital of France?",
    "What is the capital of Japan?",
    "How many days are there in a leap year?",
    "What is photosynthesis?",
    "Why is the sky blue?",
    "What is the boiling point of water at sea level?",
    "Name three primary colours.",
    "What is 12 multiplied by 8?",
    "Write a haiku about rain.",
    "Give me a tip for sleeping better.",
    "What is the largest planet in our solar system?",
    "Explain what a computer program is in one sentence.",
    "What does a thermometer measure?",
    "Suggest a name for a pet cat.",
    "How do I make a cup of tea?",
    "What is the opposite of 'ancient'?",
    "Translate 'good morning' into Spanish.",
    "What language is spoken in Brazil?",
    "Who painted the Mona Lisa?",
    "What is gravity?",
    "List three fruits that are red.",
    "What is the square root of 81?",
    "How many continents are there?",
    "Write one sentence about the ocean.",
    "What is the chemical symbol for gold?",
    "Why do we need to drink water?",
    "What is a noun?",
    "Give me a synonym for 'happy'.",
    "How many legs does a spider have?",
    "What is the freezing point of water in Fahrenheit?",
    "Describe a rainbow in one sentence.",
    "What is the main ingredient of guacamole?",
    "Write a Python function that adds two numbers.",
    "What is the tallest mountain on Earth?",
    "What do bees make?",
    "How many minutes are in two hours?",
    "What is the capital of Canada?",
    "Give me a short motivational quote.",
    "What is an atom?",
    "Which planet is known as the Red Planet?",
    "What is the difference between weather and climate?",
    "Name a musical instrument with strings.",
    "How do plants get water?",
    "What is the plural of 'mouse'?",
    "Recommend a healthy breakfast.",
    "What is the speed of light, roughly?",
    "What are the three states of matter?",
    "Write a short greeting for a birthday card.",
    "What is the largest ocean?",
    "How many sides does a hexagon have?",
]


def main() -> None:
    cfg = build_config({"model_name_or_path": "smollm2-135m-instruct", "template": "auto"})
    engine = build_engine(cfg)
    params = SamplingParams(do_sample=False, max_new_tokens=160)
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda q: engine.chat([{"role": "user", "content": q}], params=params), QUESTIONS))
    finally:
        engine.close()
    records = [
        {"instruction": q, "input": "", "output": a.text.strip()}
        for q, a in zip(QUESTIONS, answers)
        if a.finish_reason == "stop" and a.text.strip()
    ]
    path = Path(__file__).with_name("general_demo.json")
    path.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(records)} of {len(QUESTIONS)} records to {path}")


if __name__ == "__main__":
    main()
