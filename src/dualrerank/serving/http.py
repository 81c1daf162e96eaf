"""ASGI middleware in front of the service: body limits, media type, and one shape for every 4xx.

BentoML answers a bad body with a 400 whose shape depends on where it failed (pydantic errors as a list
under ``detail``, a raised ``InvalidArgument`` as a one-element list), while its OpenAPI document
declares ``{"error": str, "detail": str}`` for 4xx. This middleware makes every 4xx that shape, with
``error`` naming the field(s) at fault, so clients and schema checks see what the schema promises.
It also refuses bodies over the size limit (413) before they are read, and non-JSON bodies (415).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON = "application/json"


def _field_errors(errors: list[Any]) -> str:
    """``"candidates.0.features.3: Input should be a finite number; context: Field required"``."""
    parts = []
    for e in errors:
        if isinstance(e, dict) and "msg" in e:
            loc = ".".join(str(p) for p in e.get("loc", ())) or "body"
            parts.append(f"{loc}: {e['msg']}")
        elif isinstance(e, dict) and "error" in e:
            parts.append(str(e["error"]))
        else:
            parts.append(str(e))
    return "; ".join(parts)


def error_body(status: int, raw: bytes) -> dict[str, str]:
    """Any 4xx body (BentoML's, pydantic's, Starlette's plain text) as ``{"error", "detail"}``."""
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = raw.decode("utf-8", "replace")
    if isinstance(data, list):
        return {"error": _field_errors(data) or f"HTTP {status}", "detail": "invalid request"}
    if isinstance(data, dict):
        detail = data.get("detail")
        if isinstance(detail, list):  # pydantic validation errors
            return {"error": _field_errors(detail), "detail": f"{len(detail)} invalid field(s)"}
        message = data.get("error") or detail or f"HTTP {status}"
        return {"error": str(message), "detail": str(detail) if detail is not None else "invalid request"}
    return {"error": str(data) if data else f"HTTP {status}", "detail": "invalid request"}


async def _reply(send: Send, status: int, body: dict[str, str]) -> None:
    raw = json.dumps(body).encode()
    headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


class RequestGuard:
    """Size and media-type checks on POST bodies, and uniform 4xx bodies on every route."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "POST":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            media = headers.get("content-type", JSON).split(";")[0].strip().lower()
            if media != JSON:
                await _reply(send, 415, {"error": f"content-type: expected {JSON}, got {media!r}", "detail": ""})
                return
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                await _reply(send, 413, self._too_large())
                return
            if length is None:  # chunked: read it here, within the limit, then replay it
                body = await self._read_limited(receive)
                if body is None:
                    await _reply(send, 413, self._too_large())
                    return
                receive = _replay(body)
        await self.app(scope, receive, _uniform_errors(send))

    def _too_large(self) -> dict[str, str]:
        return {"error": f"body: larger than the limit of {self.max_body_bytes} bytes", "detail": ""}

    async def _read_limited(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _uniform_errors(send: Send) -> Send:
    """Pass 2xx/3xx/5xx through untouched; buffer a 4xx body and rewrite it as ``{"error", "detail"}``."""
    status = 0
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            if not 400 <= status < 500:
                await send(message)
            return
        if not 400 <= status < 500 or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            await _reply(send, status, error_body(status, b"".join(chunks)))

    return wrapped
