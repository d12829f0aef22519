"""An Ollama ``Modelfile`` beside the GGUF: ``ollama create NAME -f Modelfile`` in the export folder.

Ollama renders prompts with its own Go text/template ``TEMPLATE``, not the GGUF's Jinja chat
template, so the training template is translated here, format by format, into Go template text
that renders what ``Template.render_segments`` renders (tests/export renders both with Go's
text/template and compares):

- Ollama passes ``.System`` (the request's system messages, or the Modelfile's ``SYSTEM``, which
  carries the template's default system prompt) and ``.Messages`` (``.Role``, ``.Content``; system
  messages are skipped in the loop since ``.System`` already holds them);
- literal text is written raw with no ``{{-`` trim markers (they would eat the newlines the chat
  format needs); the assistant header ends the prompt when the last message is not the assistant's;
- ``PARAMETER stop`` for each stop word of the template.

Tool schemas are not part of the TEMPLATE (Ollama's ``.Tools`` has its own format); tool results
(``tool`` messages) are. ``template: auto`` (the model's own Jinja template) has no translation:
the Modelfile then leaves TEMPLATE out, and Ollama derives one from the GGUF's chat template.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from lmforge.data.templates import Template, fill
from lmforge.errors import LmforgeError

logger = logging.getLogger(__name__)
_SLOT = "\x00lmforge-content\x00"


def render_modelfile(template: Template, tokenizer: Any, gguf_name: str) -> str:
    lines = ["# Ollama Modelfile written by lmforge export: ollama create NAME -f Modelfile", f"FROM ./{gguf_name}"]
    go = go_template(template, tokenizer)
    if go is None:
        logger.warning(
            "Modelfile: template %s is the model's own Jinja template; TEMPLATE left out (Ollama derives it "
            "from the GGUF's chat template)", template.name,
        )  # fmt: skip
        lines.append("# TEMPLATE left out: Ollama derives it from the chat template embedded in the GGUF")
    else:
        lines.append(f'TEMPLATE """{go}"""')
    if template.default_system:
        if '"""' in template.default_system:
            raise LmforgeError(
                'the default system prompt contains """, which a Modelfile cannot quote',
                "change default_system, or export safetensors",
            )
        lines.append(f'SYSTEM """{template.default_system}"""')
    stops = template.stop_token_strings(tokenizer)
    lines += [f"PARAMETER stop {json.dumps(word, ensure_ascii=False)}" for word in stops]
    return "\n".join(lines) + "\n"


def go_template(template: Template, tokenizer: Any) -> str | None:
    """The Go text/template equivalent of a named template; None for ``template: auto``."""
    from lmforge.data.template_auto import TokenizerTemplate

    if isinstance(template, TokenizerTemplate):
        return None
    header = _text(fill(template.assistant_header, tokenizer))
    system = _format(template.system, tokenizer, "$.System")
    user_content = "{{ .Content }}"
    out = [_text(fill(template.prefix, tokenizer))]
    if template.system_in_user:
        out.append("{{ $sys := .System }}")
        user_content = f'{{{{ if $sys }}}}{system}{{{{ $sys = "" }}}}{{{{ end }}}}{{{{ .Content }}}}'
    else:
        out.append(f"{{{{ if .System }}}}{system}{{{{ end }}}}")
    user = _format(template.user, tokenizer, None, user_content)
    tool = _format(template.observation or template.user, tokenizer, ".Content")
    assistant = _format(template.assistant, tokenizer, ".Content")
    out += [
        '{{ $last := "" }}{{ range .Messages }}',
        f'{{{{ if eq .Role "user" }}}}{user}{{{{ $last = .Role }}}}',
        f'{{{{ else if eq .Role "assistant" }}}}{header}{assistant}{{{{ $last = .Role }}}}',
        f'{{{{ else if eq .Role "tool" }}}}{tool}{{{{ $last = .Role }}}}',
        "{{ end }}{{ end }}",
        f'{{{{ if ne $last "assistant" }}}}{header}{{{{ end }}}}',
    ]
    return "".join(out)


def _format(fmt: str, tokenizer: Any, variable: str | None, raw: str | None = None) -> str:
    """A format string with ``{{content}}`` as a Go action (``variable``) or ``raw`` Go text."""
    before, _, after = fill(fmt.replace("{{content}}", _SLOT, 1), tokenizer).partition(_SLOT)
    middle = raw if raw is not None else f"{{{{ {variable} }}}}"
    return _text(before) + middle + _text(after)


def _text(literal: str) -> str:
    """Literal Go template text: ``{{`` and a triple quote (which would end the Modelfile string) escaped."""
    return literal.replace("{{", '{{ "{{" }}').replace('"""', '{{ "\\"\\"\\"" }}')
