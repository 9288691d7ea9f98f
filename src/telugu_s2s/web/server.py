"""HTTP (the page) and WebSocket (/ws) on one port, with the `websockets` library."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import signal
from http import HTTPStatus
from pathlib import Path

import grpc
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

from telugu_s2s.web.bridge import bridge
from telugu_s2s.web.config import WebConfig

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
FILES = {
    "/": "index.html",
    "/index.html": "index.html",
    "/app.js": "app.js",
    "/capture-worklet.js": "capture-worklet.js",
    "/style.css": "style.css",
}


def static_response(path: str) -> Response | None:
    name = FILES.get(path.split("?", 1)[0])
    if name is None:
        return None
    body = (STATIC / name).read_bytes()
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype.endswith("javascript"):
        ctype += "; charset=utf-8"
    headers = Headers([("Content-Type", ctype), ("Content-Length", str(len(body))), ("Cache-Control", "no-cache")])
    return Response(HTTPStatus.OK, "OK", headers, body)


async def serve(cfg: WebConfig, ready: asyncio.Event | None = None) -> None:
    channel = grpc.aio.insecure_channel(cfg.gateway_target)
    active = 0

    def process_request(connection, request):
        if request.path.split("?", 1)[0] == "/ws":
            return None  # proceed with the WebSocket handshake
        response = static_response(request.path)
        if response is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        return response

    async def handler(ws):
        nonlocal active
        if active >= cfg.max_sessions:
            await ws.close(1013, "too many sessions")
            return
        active += 1
        try:
            await bridge(ws, channel, cfg.gateway_api_key)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("web session failed")
        finally:
            active -= 1

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    async with ws_serve(handler, cfg.host, cfg.port, process_request=process_request, max_size=1 << 16):
        log.info("web page on http://%s:%d/ (gateway %s)", cfg.host, cfg.port, cfg.gateway_target)
        if ready is not None:
            ready.set()
        await stop.wait()
    await channel.close()
