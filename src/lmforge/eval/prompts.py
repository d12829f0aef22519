"""Multiple-choice questions as a conversation, worded as LLaMA-Factory's eval templates are.

Each few-shot example is a user turn (question, options, "Answer:") and an assistant turn (the
letter); the question asked is the last user turn. The subject line goes at the front of the first
user turn, not in the system prompt, so a template's default system prompt still applies: the
model sees the chat format it was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmforge.eval.benchmark import CHOICES, Question


@dataclass(frozen=True)
class Wording:
    system: str  # {subject} is the subject's name
    choice: str  # {choice} letter, {content} option text
    answer: str


WORDINGS = {
    "en": Wording(
        "The following are multiple choice questions (with answers) about {subject}.\n\n",
        "\n{choice}. {content}",
        "\nAnswer:",
    ),
    "zh": Wording(
        "以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n", "\n{choice}. {content}", "\n答案："
    ),
}


def render_question(question: Question, wording: Wording) -> str:
    options = "".join(wording.choice.format(choice=c, content=o) for c, o in zip(CHOICES, question.options))
    return question.question + options + wording.answer


def question_messages(question: Question, shots: list[Question], subject: str, lang: str) -> list[dict[str, str]]:
    """The conversation that ends with the user asking ``question``; the model's next token answers."""
    wording = WORDINGS[lang]
    messages: list[dict[str, str]] = []
    for shot in shots:
        messages.append({"role": "user", "content": render_question(shot, wording)})
        messages.append({"role": "assistant", "content": shot.answer})
    messages.append({"role": "user", "content": render_question(question, wording)})
    messages[0] = {"role": "user", "content": wording.system.format(subject=subject) + messages[0]["content"]}
    return messages
