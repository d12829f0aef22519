"""A Gradio chat page on the engine: streamed answers, a system prompt and sampling controls.

The page keeps the history in the browser session; each turn re-renders the whole conversation
with the run's template, as the API does. Gradio runs the streaming handler in its worker threads,
so several browser tabs share the engine's batching like API clients do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from lmforge.infer.engine import Engine

CSS = "#chatbot { min-height: 420px; }"


def _text(content: Any) -> str:
    """Gradio 6 may hand message content back as parts ([{"type": "text", "text": ...}])."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, list):
        return "".join(_text(part) for part in content)
    return ""


def respond(
    engine: Engine, history: list[dict[str, Any]], system: str, temperature: float, top_p: float, max_new_tokens: int
) -> Iterator[list[dict[str, Any]]]:
    """Stream the assistant's answer to the last user message into the chat history."""
    messages = [{"role": m["role"], "content": _text(m["content"])} for m in history]
    params = engine.defaults.updated(
        temperature=temperature, top_p=top_p, do_sample=temperature > 0, max_new_tokens=int(max_new_tokens)
    )
    prompt = engine.encode_chat(messages, system or None)
    answer = ""
    for event in engine.stream(prompt, params):
        if event.error:
            answer += f"\n[generation failed: {event.error}]"
        answer += event.text
        yield [*history, {"role": "assistant", "content": answer}]


def build_ui(engine: Engine) -> Any:
    import gradio as gr

    defaults = engine.defaults
    with gr.Blocks(title="lmforge chat") as demo:
        gr.Markdown(f"### lmforge chat: `{engine.model_name}`")
        chatbot = gr.Chatbot(elem_id="chatbot", height=480)
        msg = gr.Textbox(elem_id="msg", placeholder="Type a message and press Enter", show_label=False)
        with gr.Row():
            clear = gr.Button("Clear", elem_id="clear")
        with gr.Accordion("Settings", open=False):
            system = gr.Textbox(label="System prompt", elem_id="system", value="")
            temperature = gr.Slider(0, 2, value=defaults.temperature if defaults.do_sample else 0, label="Temperature")
            top_p = gr.Slider(0.05, 1, value=defaults.top_p, label="Top-p")
            max_new = gr.Slider(1, 4096, value=min(defaults.max_new_tokens, 4096), step=1, label="Max new tokens")

        def add_user(text: str, history: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
            return "", [*(history or []), {"role": "user", "content": text}]

        def answer(
            history: list[dict[str, Any]], system_prompt: str, temp: float, p: float, limit: int
        ) -> Iterator[list[dict[str, Any]]]:
            yield from respond(engine, history, system_prompt, temp, p, limit)

        msg.submit(add_user, [msg, chatbot], [msg, chatbot], queue=False).then(
            answer, [chatbot, system, temperature, top_p, max_new], chatbot
        )
        clear.click(lambda: [], None, chatbot, queue=False)
    return demo


def launch(engine: Engine, host: str = "127.0.0.1", port: int | None = None, block: bool = True) -> Any:
    """Serve the page; ``block=False`` returns at once (tests), with ``demo.local_url`` set."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    demo = build_ui(engine)
    demo.queue(default_concurrency_limit=16)
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=True, css=CSS)
    return demo
