"""Terminal chat: a conversation with history and a system prompt, answers streamed as they come.

Commands at the prompt: ``clear`` (or ``/clear``) forgets the history, ``exit`` (``/exit``,
``quit``, Ctrl-D) leaves. Ctrl-C while an answer streams stops that answer and keeps the session.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

from lmforge.infer.engine import Engine
from lmforge.infer.params import SamplingParams

CLEAR = {"clear", "/clear"}
EXIT = {"exit", "/exit", "quit", "/quit"}
BANNER = "Chat with {model}. Type `clear` to forget the history, `exit` to quit."


class ChatSession:
    """The conversation so far; ``ask`` streams one answer and remembers it."""

    def __init__(self, engine: Engine, system: str | None = None, params: SamplingParams | None = None) -> None:
        self.engine = engine
        self.system = system
        self.params = params or engine.defaults
        self.history: list[dict[str, Any]] = []

    def ask(self, question: str, write: Callable[[str], None] = lambda _: None) -> str:
        """Send ``question``; call ``write`` with each piece of the answer; return the whole answer."""
        messages = [*self.history, {"role": "user", "content": question}]
        prompt = self.engine.encode_chat(messages, self.system)
        parts: list[str] = []
        for event in self.engine.stream(prompt, self.params):
            if event.error:
                raise RuntimeError(f"generation failed: {event.error}")
            parts.append(event.text)
            write(event.text)
        answer = "".join(parts)
        self.history = [*messages, {"role": "assistant", "content": answer}]
        return answer

    def clear(self) -> None:
        self.history = []


def run_terminal(session: ChatSession, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    """The read-answer loop of ``lmforge chat``."""

    def write(text: str) -> None:
        stdout.write(text)
        stdout.flush()

    write(BANNER.format(model=session.engine.model_name) + "\n")
    while True:
        write("\nUser: ")
        line = stdin.readline()
        if not line:  # end of input (Ctrl-D)
            write("\n")
            return
        question = line.strip()
        if not question:
            continue
        if question.lower() in EXIT:
            return
        if question.lower() in CLEAR:
            session.clear()
            write("History cleared.\n")
            continue
        write("Assistant: ")
        try:
            session.ask(question, write)
        except KeyboardInterrupt:
            write(" [stopped]")
        write("\n")
