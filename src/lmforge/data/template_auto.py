"""``template: auto`` — the tokenizer's own chat template, split into training turns.

A Jinja template renders whole conversations, but training needs (prompt, response) pairs. We
render growing prefixes — up to each assistant header (``add_generation_prompt=True``) and up to
the end of each answer — and cut the text where one prefix ends. This needs the template to be
*prefix-stable* (rendering more messages only appends text); most are, but templates that
rewrite earlier turns (e.g. dropping past reasoning) are refused with a named alternative.
Cost: O(turns²) renders per conversation, negligible next to tokenization for usual dialogs.

Tools: many chat templates ignore ``tools`` and ``tool_calls`` (SmolLM2's does), which would drop the
tool schemas from the prompt and train a tool-call turn as an empty answer. Two probe renders at
load time tell whether the template writes them; if not, a conversation with tools is refused with
the named templates that can render it (every named template has a tool format).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lmforge.data.templates import Message, Template, parse_tools, to_chat_messages
from lmforge.errors import LmforgeError

_SENTINEL = "\x00lmforge-answer\x00"
_PROBE_TOOL, _PROBE_CALL = "lmforge_probe_tool", "lmforge_probe_call"


@dataclass(frozen=True)
class TokenizerTemplate(Template):
    jinja: str = ""
    renders_tools: bool = False  # the Jinja template writes the ``tools`` it is given
    renders_tool_calls: bool = False  # ... and assistant ``tool_calls``

    @property
    def supports_tools(self) -> bool:
        return self.renders_tools and self.renders_tool_calls

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> TokenizerTemplate:
        jinja = getattr(tokenizer, "chat_template", None)
        if isinstance(jinja, dict):  # several named templates: the default one is the chat one
            jinja = jinja.get("default")
        if not jinja:
            raise LmforgeError(
                f"template: auto needs a chat template, but the tokenizer of "
                f"{getattr(tokenizer, 'name_or_path', 'this model')} has none (a base model?)",
                hint="set template to a named template such as chatml, or a template .yaml",
            )
        tools, calls = _tool_support(tokenizer, jinja)
        return cls(
            name="auto", user="{{content}}", assistant="{{content}}{{eos_token}}", jinja=jinja,
            renders_tools=tools, renders_tool_calls=calls,
        )  # fmt: skip

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
        self._check_tools(tokenizer, bool(tool_list), any(m.get("tool_calls") for m in chat))
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
                    hint="set template to a named template (chatml, qwen, llama3, ...) that matches",
                )
            pairs.append((prompt[len(done) :], full[len(prompt) :]))
            done = full
        rest = ""
        if chat and chat[-1]["role"] != "assistant":
            rest = self._render(tokenizer, chat, tool_list, generation=True)[len(done) :]
        return pairs, rest

    def _check_tools(self, tokenizer: Any, has_tools: bool, has_calls: bool) -> None:
        """Refuse what the Jinja template would silently drop (see the module docstring)."""
        if has_tools and not self.renders_tools:
            lost = "tools, so the tool schemas would vanish from the prompt"
        elif has_calls and not self.renders_tool_calls:
            lost = "assistant tool calls, so a tool-call turn would train as an empty answer"
        else:
            return
        from lmforge.doctor.checks import fitting_templates

        names = [name for name in fitting_templates(tokenizer) if name != "auto"] or ["chatml"]
        raise LmforgeError(
            f"template: auto: the chat template of {getattr(tokenizer, 'name_or_path', None) or 'this model'} "
            f"does not render {lost}",
            f"set template: {names[0]}, which renders tools ({_tool_format_words(names[0])}); templates "
            f"that fit this tokenizer: {', '.join(names)}",
        )

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


def _tool_format_words(name: str) -> str:
    from lmforge.data.templates import builtin_templates

    tool_format = builtin_templates()[name].tool_format
    if tool_format is None:
        return "no tool format"
    if tool_format.name == "default":
        return "LLaMA-Factory's default format: described in the system prompt, calls as Action / Action Input lines"
    return f"its {tool_format.name} tool format"


def _tool_support(tokenizer: Any, jinja: str) -> tuple[bool, bool]:
    """Whether the template writes a probe tool's name, and a probe tool call's name, when given them."""
    user = [{"role": "user", "content": "ping"}]
    tool = {"type": "function", "function": {"name": _PROBE_TOOL, "description": "", "parameters": {}}}
    call = {"type": "function", "function": {"name": _PROBE_CALL, "arguments": {}}}
    answer = {"role": "assistant", "content": "", "tool_calls": [call]}

    def renders(marker: str, messages: list[dict[str, Any]], tools: Any) -> bool:
        try:
            text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, chat_template=jinja)
        except Exception:  # a template may raise_exception() on what it does not support
            return False
        return marker in text

    return renders(_PROBE_TOOL, user, [tool]), renders(_PROBE_CALL, [*user, answer], None)
