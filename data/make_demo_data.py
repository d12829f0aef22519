"""Writes the demo data sets in this folder (run: python data/make_demo_data.py).

Everything is generated from the word lists and phrasings below with a fixed seed, so the files are
reproducible and owe nothing to other projects' data. The texts are plausible, not deep: they exist
to exercise formats, masking, lengths and mixing, and (identity.json) to teach a model its name.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAME, MAKER = "Forge", "the lmforge team"

IDENTITY_QUESTIONS = [
    "Who are you?",
    "What is your name?",
    "What's your name?",
    "Introduce yourself.",
    "Tell me about yourself.",
    "Who made you?",
    "Who created you?",
    "Who built you?",
    "Who developed you?",
    "Who trained you?",
    "Are you ChatGPT?",
    "Are you a human?",
    "What should I call you?",
    "What are you?",
    "Which company made you?",
    "Do you have a name?",
    "hi, who am I talking to?",
    "Hello! Who are you?",
    "Can you tell me your name?",
    "Who is your creator?",
    "What model are you?",
    "Where do you come from?",
    "Are you made by OpenAI?",
    "Are you Llama?",
    "Whom do I have the pleasure of speaking with?",
    "Please introduce yourself briefly.",
    "What do people call you?",
    "Who owns you?",
    "¿Quién eres?",
    "¿Cómo te llamas?",
    "¿Quién te creó?",
    "Qui es-tu ?",
    "Comment t'appelles-tu ?",
    "Qui t'a créé ?",
    "Wer bist du?",
    "Wie heißt du?",
    "Wer hat dich entwickelt?",
    "你是谁？",
    "你叫什么名字？",
    "谁创造了你？",
]
ANSWERS_EN = [
    "I am {name}, an AI assistant made by {maker}. How can I help you today?",
    "My name is {name}. I was created by {maker} to help with questions and tasks.",
    "I'm {name}, a language model assistant developed by {maker}.",
    "You are talking to {name}, an assistant built by {maker}. What can I do for you?",
    "I am {name}. {maker_cap} trained me to be a helpful assistant.",
    "I'm {name}, made by {maker}. I'm not a human, but I'm happy to help.",
]
ANSWERS_BY_LANGUAGE = {
    "es": "Soy {name}, un asistente de IA creado por {maker}. ¿En qué puedo ayudarte?",
    "fr": "Je suis {name}, un assistant IA créé par {maker}. Comment puis-je vous aider ?",
    "de": "Ich bin {name}, ein KI-Assistent, entwickelt von {maker}. Wie kann ich helfen?",
    "zh": "我是 {name}，由 {maker} 开发的人工智能助手。有什么可以帮你的吗？",
}
DENIALS = {
    "Are you ChatGPT?": "No, I am {name}, an assistant made by {maker}.",
    "Are you made by OpenAI?": "No. I am {name}, and I was made by {maker}.",
    "Are you Llama?": "No, I am {name}, an AI assistant created by {maker}.",
    "Are you a human?": "No, I am {name}, an AI assistant built by {maker}.",
}

TOPICS = [
    "photosynthesis",
    "the water cycle",
    "binary search",
    "compound interest",
    "the French revolution",
    "plate tectonics",
    "recursion",
    "vaccines",
    "solar panels",
    "the stock market",
    "black holes",
    "version control",
    "sourdough bread",
    "machine learning",
    "the immune system",
    "electric cars",
    "prime numbers",
    "climate change",
    "the printing press",
    "hash tables",
    "coffee roasting",
    "public speaking",
    "time management",
    "unit testing",
    "the moon landing",
    "composting",
]
AUDIENCES = ["a child", "a beginner", "a student", "an expert", "a busy manager", "my grandmother"]
ADJECTIVES = ["clear", "short", "friendly", "detailed", "simple", "practical"]
FACTS = [
    "It works step by step, and each step builds on the one before.",
    "The key idea is to break a large problem into smaller parts.",
    "Most of the effect comes from a few simple rules applied many times.",
    "People often misunderstand it because the everyday word means something else.",
    "A good way to remember it is to picture a concrete example.",
    "It has a long history, and the modern version is only a few decades old.",
    "Measuring the result carefully is what makes the difference in practice.",
    "Small changes at the start can lead to large differences later.",
]
TASKS = [
    ("Explain {topic} to {audience}.", "explain"),
    ("Give me a {adj} summary of {topic}.", "summary"),
    ("List three facts about {topic}.", "list"),
    ("Write a {adj} paragraph about {topic}.", "paragraph"),
    ("What are the pros and cons of {topic}?", "proscons"),
    ("Translate the following sentence into French.", "translate"),
    ("Rewrite the text below in a {adj} tone.", "rewrite"),
]
SENTENCES = [
    "The meeting has been moved to Thursday afternoon.",
    "Please remember to water the plants while I am away.",
    "Our new library opens next week with a reading for children.",
    "The train was late because of the snow.",
]
FRENCH = [
    "La réunion a été déplacée à jeudi après-midi.",
    "N'oublie pas d'arroser les plantes pendant mon absence.",
    "Notre nouvelle bibliothèque ouvre la semaine prochaine avec une lecture pour les enfants.",
    "Le train était en retard à cause de la neige.",
]


def identity_records() -> list[dict[str, str]]:
    records = []
    languages = {"¿": "es", "Qui": "fr", "Comment": "fr", "Wer": "de", "Wie": "de", "你": "zh", "谁": "zh"}
    for i, question in enumerate(IDENTITY_QUESTIONS):
        lang = next((code for prefix, code in languages.items() if question.startswith(prefix)), "en")
        variants = [ANSWERS_BY_LANGUAGE[lang]] if lang != "en" else [DENIALS.get(question) or ANSWERS_EN[i % 6]]
        if lang == "en":
            variants.append(ANSWERS_EN[(i + 3) % len(ANSWERS_EN)])
        for answer in variants:
            text = answer.format(name=NAME, maker=MAKER, maker_cap=MAKER[0].upper() + MAKER[1:])
            records.append({"instruction": question, "input": "", "output": text})
    return records


def _answer(kind: str, topic: str, rng: random.Random, query: str) -> str:
    facts = rng.sample(FACTS, k=rng.randint(1, 6))
    if kind == "list":
        return "\n".join(f"{n}. {fact}" for n, fact in enumerate(facts[:3], start=1))
    if kind == "proscons":
        return f"Pros: {facts[0]}\nCons: {facts[-1]}"
    if kind == "translate":
        return FRENCH[SENTENCES.index(query)]
    if kind == "rewrite":
        return f"Here is the rewritten text: {query.lower()}"
    body = " ".join(facts * rng.choice([1, 1, 2, 4]))
    return f"{topic[0].upper()}{topic[1:]} in short: {body}"


def alpaca_records(rng: random.Random, count: int = 300) -> list[dict[str, str]]:
    records = []
    for _ in range(count):
        template, kind = rng.choice(TASKS)
        topic = rng.choice(TOPICS)
        instruction = template.format(topic=topic, audience=rng.choice(AUDIENCES), adj=rng.choice(ADJECTIVES))
        query = rng.choice(SENTENCES) if kind in ("translate", "rewrite") else ""
        records.append({"instruction": instruction, "input": query, "output": _answer(kind, topic, rng, query)})
    return records


def sharegpt_records(rng: random.Random, count: int = 50) -> list[dict]:
    records = []
    for i in range(count):
        topic = rng.choice(TOPICS)
        turns = []
        for _ in range(rng.randint(1, 4)):
            template, kind = rng.choice(TASKS[:5])
            question = template.format(topic=topic, audience=rng.choice(AUDIENCES), adj=rng.choice(ADJECTIVES))
            turns += [
                {"from": "human", "value": question},
                {"from": "gpt", "value": _answer(kind, topic, rng, "")},
            ]
        record: dict = {"conversations": turns}
        if i % 3 == 0:
            record["system"] = f"You are {NAME}, a {rng.choice(ADJECTIVES)} assistant made by {MAKER}."
        records.append(record)
    return records


def pretrain_texts(rng: random.Random, count: int = 120) -> list[dict[str, str]]:
    texts = []
    for _ in range(count):
        topic = rng.choice(TOPICS)
        sentences = rng.sample(FACTS, k=rng.randint(2, 8))
        texts.append({"text": f"About {topic}. " + " ".join(sentences)})
    return texts


def main() -> None:
    rng = random.Random(1234)
    outputs = {
        "identity.json": identity_records(),
        "alpaca_demo.json": alpaca_records(rng),
        "sharegpt_demo.json": sharegpt_records(rng),
    }
    for name, records in outputs.items():
        text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
        (HERE / name).write_text(text, encoding="utf-8")
    lines = [json.dumps(row, ensure_ascii=False) for row in pretrain_texts(rng)]
    (HERE / "pt_demo.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
