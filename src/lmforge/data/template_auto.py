"""``template: auto`` — the tokenizer's own chat template, split into training turns.

A Jinja template renders whole conversations, but training needs (prompt, response) pairs. We
render growing prefixes — up to each assistant header (``add_generation_prompt=True``) and up to
the end of each answer — and cut the text where one prefix ends. This needs the template to be
*prefix-stable* (rendering more messages only appends text); most are, but templates that
rewrite earlier turns (e.g. dropping past reasoning) are refused with a named alternative.
Cost: O(turns²) renders per conversation, negligible next to tokenization for usual dialogs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lmforge.data.templates import Message, Template, parse_tools, to_chat_messages
from lmforge.errors import LmforgeError

_SENTINEL = "\x00lmforge-answer\x00"


@dataclass(frozen=True)
class TokenizerTemplate(Template):
    jinja: str = ""

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> TokenizerTemplate:
        jinja = getattr(tokenizer, "chat_template", None)
        if isinstance(jinja, dict):  # several named templates: the default one is the chat one
            jinja = jinja.get("default")
        if not jinja:
            raise LmforgeError(
                f"template: auto needs a chat template, but the tokenizer of "
                f"{getattr(tokenizer, 'name_or_path', 'this model')} has none (a base model?)",
                hint="set data.template to a named template such as chatml, or a template .yaml",
            )
        return cls(name="auto", user="{{content}}", assistant="{{content}}{{eos_token}}", jinja=jinja)

    def _render(self, tokenizer: Any, messages: list[dict[str, Any]], tools: Any, generation: bool) -> str:
        return tokenizer.apply_chat_template(
            messages, tools=tools or None, add_generation_prompt=generation, tokenize=False,
            chat_template=self.jinja,
        )  # fmt: skip

    def render_segments(
        self, tokenizer: Any, messages: list[Message], system: str | None = None, tools: Any = None
    ) -> tuple[list[tuple[str, str]], str]:
        chat = to_chat_messages(messages, system or None)
        if self.default_system and (not chat or chat[0]["role"] != "system"):
            chat.insert(0, {"role": "system", "content": self.default_system})
        tool_list = parse_tools(tools)
        pairs: list[tuple[str, str]] = []
        done = ""
        for i, message in enumerate(chat):
            if message["role"] != "assistant":
                continue
            prompt = self._render(tokenizer, chat[:i], tool_list, generation=True)
            full = self._render(tokenizer, chat[: i + 1], tool_list, generation=False)
            if not prompt.startswith(done) or not full.startswith(prompt):
                raise LmforgeError(
                    "the tokenizer's chat template is not prefix-stable: rendering a longer "
                    f"conversation changes earlier text (at message {i}), so turns cannot be split",
                    hint="set data.template to a named template (chatml, qwen, llama3, ...) that matches",
                )
            pairs.append((prompt[len(done) :], full[len(prompt) :]))
            done = full
        rest = ""
        if chat and chat[-1]["role"] != "assistant":
            rest = self._render(tokenizer, chat, tool_list, generation=True)[len(done) :]
        return pairs, rest

    def turn_suffix(self, tokenizer: Any) -> str:
        probe = [{"role": "user", "content": "ping"}, {"role": "assistant", "content": _SENTINEL}]
        ((_, response),), _ = self.render_segments(tokenizer, probe)
        return response.split(_SENTINEL, 1)[1] if _SENTINEL in response else ""

    def chat_template_jinja(self, tokenizer: Any) -> str:
        return self.jinja

    def parse_tool_calls(self, text: str) -> list[dict[str, Any]] | None:
        # Most tool-capable chat templates (Qwen, Hermes, SmolLM3) use <tool_call>{json}</tool_call>.
        from lmforge.data.templates import builtin_templates

        qwen = builtin_templates()["qwen"].tool_format
        return qwen.parse_calls(text) if qwen else None
