"""The OpenAI-compatible HTTP server: app, auth, error shapes, and running it with uvicorn.

Every error, including malformed JSON and out-of-range parameters, is answered in OpenAI's shape
``{"error": {"message", "type", "param", "code"}}`` with a 4xx status; a 500 means a bug.
"""

from __future__ import annotations

import errno
import hmac
import json
import logging
import socket
import threading
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lmforge.errors import LmforgeError
from lmforge.infer import api_routes
from lmforge.infer.api_responses import ApiError
from lmforge.infer.api_schemas import ApiSettings, ChatCompletionRequest, CompletionRequest
from lmforge.infer.engine import Engine

logger = logging.getLogger(__name__)


def create_app(engine: Engine, settings: ApiSettings) -> FastAPI:
    app = FastAPI(title="lmforge", docs_url=None, redoc_url=None, openapi_url=None)
    _install_error_handlers(app)
    _install_body_limit(app, settings.max_body_bytes)
    authorized = Depends(_auth_dependency(settings.api_key))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models", dependencies=[authorized])
    async def models() -> dict[str, Any]:
        card = {"id": engine.model_name, "object": "model", "created": 0, "owned_by": "lmforge"}
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions", dependencies=[authorized])
    async def chat_completions(body: ChatCompletionRequest) -> Any:
        _check_model(engine, body.model)
        api_routes.require_generator(engine)
        return await api_routes.chat_completions(engine, body)

    @app.post("/v1/completions", dependencies=[authorized])
    async def completions(body: CompletionRequest) -> Any:
        _check_model(engine, body.model)
        api_routes.require_generator(engine)
        return await api_routes.completions(engine, body)

    @app.post("/v1/score/evaluation", dependencies=[authorized])
    async def score_evaluation(body: api_routes.ScoreEvaluationRequest) -> Any:
        _check_model(engine, body.model)
        return await api_routes.score_evaluation(engine, body)  # reward models (stage: rm)

    return app


def _check_model(engine: Engine, model: str) -> None:
    if model != engine.model_name:
        raise ApiError(
            404, f"The model `{model}` does not exist; this server serves `{engine.model_name}`",
            param="model", code="model_not_found",
        )  # fmt: skip


def _auth_dependency(api_key: str | None):
    async def check(request: Request) -> None:
        if not api_key:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_key.encode()):
            raise ApiError(401, "Incorrect or missing API key", code="invalid_api_key")

    return check


def _install_body_limit(app: FastAPI, limit: int) -> None:
    @app.middleware("http")
    async def body_limit(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return _error(413, f"request body larger than {limit} bytes", code="request_too_large")
        return await call_next(request)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError) -> JSONResponse:
        return JSONResponse(err.body, status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        whole = _whole_body_error(first, request.headers.get("content-type"))
        if whole is not None:
            return _error(400, whole, code=first.get("type"))
        loc = [str(part) for part in first.get("loc", ()) if part != "body"]
        param = ".".join(loc) or None
        message = f"{param}: {first.get('msg', 'invalid request')}" if param else first.get("msg", "invalid request")
        return _error(400, message, param=param, code=first.get("type"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return _error(err.status_code, str(err.detail))


_JSON_FIX = '; send a JSON object such as {"model": ..., "messages": [...]}'


def _whole_body_error(error: dict[str, Any], content_type: str | None) -> str | None:
    """Plain words for a body that is not a JSON object at all (FastAPI reports "JSON decode
    error" with the offset as the parameter, or pydantic's "valid dictionary" sentence)."""
    kind, loc = error.get("type"), tuple(error.get("loc", ()))
    if kind == "json_invalid":
        where = f" at character {loc[1]}" if len(loc) > 1 else ""
        reason = (error.get("ctx") or {}).get("error", "")
        return f"the request body is not valid JSON{where}" + (f" ({reason})" if reason else "") + _JSON_FIX
    if loc != ("body",):
        return None
    if "json" not in (content_type or "").lower():
        return f"the request body must be JSON sent with Content-Type: application/json (got {content_type or 'none'})"
    if kind == "missing":
        return "the request body is empty" + _JSON_FIX
    return f"the request body must be a JSON object, not {_json_kind(error.get('input'))}" + _JSON_FIX


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "a number"


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status)


class ServerThread:
    """uvicorn on an already-bound socket in a background thread (tests, benchmarks, webchat)."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.host, self.port = self.socket.getsockname()[:2]
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        while not self.server.started and self.thread.is_alive():
            threading.Event().wait(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


def bind_port(host: str, port: int, env: str = "API_PORT") -> socket.socket:
    """The server's socket, bound (not yet listening) before any weight is loaded, so a port in
    use fails in a second with one line instead of after the model loaded. ``env``: the variable
    that also sets the port, named in the hint."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            also = f" (or {env}={port + 1})" if env else ""
            raise LmforgeError(
                f"port {port} on {host} is already in use (another server is listening there)",
                f"stop that server, or choose a free port: --port {port + 1}{also}",
            ) from None
        raise LmforgeError(
            f"cannot listen on {host}:{port}: {err.strerror or err}", "check --host and --port"
        ) from None
    return sock


def serve(engine: Engine, settings: ApiSettings, sock: socket.socket) -> None:
    """Run the server on ``sock`` (from ``bind_port``) in the foreground until interrupted."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    logger.info("serving %s on http://%s:%s/v1", engine.model_name, host, port)
    config = uvicorn.Config(create_app(engine, settings), log_level="info")
    uvicorn.Server(config).run(sockets=[sock])
