"""``lmforge chat`` in a real pseudo-terminal: ask, read the streamed answer, clear, exit."""

from __future__ import annotations

import os
import sys

import pexpect


def test_chat_in_a_terminal(tiny_model_dir, tiny_engine):
    expected = tiny_engine.generate(tiny_engine.encode_chat([{"role": "user", "content": "Hello there"}])).text
    args = ["-m", "lmforge.cli", "chat", f"--model_name_or_path={tiny_model_dir}", "--template=chatml",
            "--do_sample=false", "--max_new_tokens=12"]  # fmt: skip
    child = pexpect.spawn(sys.executable, args, encoding="utf-8", timeout=120, env={**os.environ, "NO_COLOR": "1"})
    try:
        child.expect("exit` to quit")
        child.expect("User: ")
        child.sendline("Hello there")
        child.expect("Assistant: ")
        child.expect("\r\nUser: ")
        assert child.before.replace("\r\n", "\n").strip() == expected.strip()
        child.sendline("clear")
        child.expect("History cleared.")
        child.expect("User: ")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
