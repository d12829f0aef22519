"""`lmforge api` checks its port before loading weights, then serves on the socket it checked."""

from __future__ import annotations

import socket
import threading
import time

import httpx


def test_busy_port_fails_in_one_line_before_the_model_loads(tiny_model_dir, monkeypatch, capsys):
    import lmforge.infer.engine
    from lmforge.cli import main

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the port was checked")

    monkeypatch.setattr(lmforge.infer.engine, "build_engine", no_loading)
    with socket.create_server(("127.0.0.1", 0)) as other_server:
        port = other_server.getsockname()[1]
        code = main(["api", f"--model_name_or_path={tiny_model_dir}", "--template=chatml", "--port", str(port)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err
    assert f"port {port} on 127.0.0.1 is already in use" in err and f"--port {port + 1}" in err


def test_api_command_serves_on_the_port_it_checked(tiny_model_dir, monkeypatch):
    import uvicorn

    from lmforge.cli import main

    servers: list[uvicorn.Server] = []

    class Recorded(uvicorn.Server):  # the same server, with a handle to stop it from the test
        def __init__(self, config: uvicorn.Config) -> None:
            super().__init__(config)
            servers.append(self)

    monkeypatch.setattr(uvicorn, "Server", Recorded)
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    codes: list[int] = []
    argv = ["api", f"--model_name_or_path={tiny_model_dir}", "--template=chatml", "--port", str(port)]
    thread = threading.Thread(target=lambda: codes.append(main(argv)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not (servers and servers[0].started) and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/health").json() == {"status": "ok"}
    finally:
        if servers:
            servers[0].should_exit = True
        thread.join(timeout=30)
    assert codes == [0]
