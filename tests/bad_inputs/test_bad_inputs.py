"""The bad-input corpus: every case in cases/*.yaml must give the user a clear, one-line error.

Each case is data: a CLI ``argv`` with the files to create, or an ``api`` request, plus the
substring the user must see. For every case: the message is there, the exit code is non-zero (or
the HTTP status is the expected 4xx), no traceback is shown, and the working folder is unchanged
(no output written, nothing lost). Placeholders: ``{tmp}`` the case's folder, ``{model}`` the
tiny model, ``{base}`` a valid config's lines (a case's own keys after it win), ``{busy_port}``
(argv) a port a listening socket holds.
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

CASES = sorted((Path(__file__).parent / "cases").glob("*.yaml"))
GOOD_RECORDS = '[{"instruction": "Say hi.", "output": "Hi!"}, {"instruction": "Count.", "output": "1 2 3"}]'
API_KEY = "test-key"


def _params() -> list[Any]:
    params = []
    for path in CASES:
        case = yaml.safe_load(path.read_text())
        marks = [pytest.mark.xfail(reason=case["xfail"], strict=True)] if case.get("xfail") else []
        params.append(pytest.param(case, id=path.stem, marks=marks))
    return params


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def _expand(text: str, tmp: Path, model: Path) -> str:
    base = (
        f"model_name_or_path: {model}\ntemplate: chatml\ndataset: {tmp}/good.json\n"
        f"output_dir: {tmp}/out\ncutoff_len: 32\nreport_to: none\n"
    )
    return text.replace("{base}", base).replace("{tmp}", str(tmp)).replace("{model}", str(model))


@pytest.fixture(scope="module")
def api_client(tokenizer: Any) -> Any:
    from fastapi.testclient import TestClient

    from lmforge.infer.api_schemas import ApiSettings
    from lmforge.infer.api_server import create_app
    from lmforge.infer.engine import Engine, Handle
    from lmforge.infer.params import GenerationEvent, SamplingParams

    class Done(Handle):
        def cancel(self) -> None:
            return None

    class FakeEngine(Engine):
        """Answers "ok": the corpus tests request checking, not generation."""

        def __init__(self) -> None:
            from lmforge.data.templates import get_template

            self.tokenizer = tokenizer
            self.template = get_template("chatml", tokenizer)
            self.model_name = "fake"
            self.context_len = 256
            self.defaults = SamplingParams(max_new_tokens=8)

        def submit(self, prompt_ids: Any, params: Any, sink: Any) -> Handle:
            sink(GenerationEvent("ok", [], "stop", len(prompt_ids), 1))
            return Done()

    with TestClient(create_app(FakeEngine(), ApiSettings(api_key=API_KEY))) as client:
        yield client


@pytest.mark.parametrize("case", _params())
def test_bad_input_gets_a_clear_error(
    case: dict[str, Any], request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "api" in case:
        _check_api(case, request.getfixturevalue("api_client"))
    else:
        _check_cli(case, request.getfixturevalue("tiny_model_dir"), tmp_path, monkeypatch, request)


def _check_cli(
    case: dict[str, Any], model: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    from lmforge.cli import main

    (tmp / "good.json").write_text(GOOD_RECORDS)
    for name, text in (case.get("files") or {}).items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(_expand(text, tmp, model))
    monkeypatch.chdir(tmp)
    before = _snapshot(tmp)
    capsys = request.getfixturevalue("capsys")
    with socket.create_server(("127.0.0.1", 0)) as busy:  # {busy_port}: a port another server holds
        argv = [_expand(arg, tmp, model).replace("{busy_port}", str(busy.getsockname()[1])) for arg in case["argv"]]
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse usage errors
            code = exit_.code
    out, err = capsys.readouterr()
    shown = out + err
    assert code not in (0, None), shown
    assert "Traceback" not in shown
    assert "error" in shown.lower(), shown  # "lmforge: error: ...", argparse usage, doctor table
    assert _expand(case["expect"], tmp, model) in shown, shown
    assert _snapshot(tmp) == before, "the failed command wrote or removed files"


def _check_api(case: dict[str, Any], client: Any) -> None:
    spec = case["api"]
    kwargs: dict[str, Any] = {"headers": spec.get("headers", {})}
    if "json" in spec:
        kwargs["json"] = spec["json"]
    if "body" in spec:
        kwargs["content"] = spec["body"]
    response = client.request(spec["method"], spec["path"], **kwargs)
    assert response.status_code == case["status"], response.text
    body = response.json()
    message = body["error"]["message"]
    assert message and "Traceback" not in response.text
    assert case["expect"] in message, message
