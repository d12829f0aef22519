"""The Gradio chat page in Debian's chromium (Playwright): type a message, see the answer."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_webchat_page_answers_a_message(builtin_engine, tmp_path, monkeypatch):
    from playwright.sync_api import sync_playwright

    from lmforge.infer.webchat import launch

    monkeypatch.setenv("HOME", str(tmp_path))  # chromium's crash reports stay in the test folder
    question = [{"role": "user", "content": "What is the capital of France?"}]
    expected = builtin_engine.generate(builtin_engine.encode_chat(question)).text
    demo = launch(builtin_engine, block=False)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS, headless=True
            )
            page = browser.new_page()
            page.goto(demo.local_url, timeout=60_000)
            page.fill("#msg textarea", "What is the capital of France?")
            page.press("#msg textarea", "Enter")
            bot = page.locator("#chatbot .message.bot").last
            bot.wait_for(timeout=60_000)
            page.wait_for_function(  # streamed: wait until the whole answer is shown
                "want => { const m = document.querySelectorAll('#chatbot .message.bot');"
                " return m.length && m[m.length - 1].innerText.trim().split(/\\s+/).join(' ') === want; }",
                arg=" ".join(expected.split()),
                timeout=60_000,
            )
            shown = bot.inner_text().strip()
            browser.close()
    finally:
        demo.close()
    assert "Paris" in expected
    assert shown.split() == expected.split()
