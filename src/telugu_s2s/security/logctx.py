"""Per-request log fields and secret redaction for every service's logs.

- `start_request(metadata)` (called once per RPC) sets a request id: the caller's
  `x-request-id` metadata when it is a short safe token, else a fresh random one.
- `set_fields(...)` adds fields for the rest of the RPC (tenant, key id, turn id).
  Both live in a contextvar, so tasks spawned by the RPC (one per turn) inherit them and a
  turn's own `set_fields(turn_id=...)` stays inside that turn's task.
- `install()` adds `ContextFilter` (the fields) and `RedactFilter` (bearer tokens, API keys,
  passwords in URLs) to the root handlers; call it right after `telugu_s2s.common.logs.setup`.
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
from collections.abc import Iterable

import grpc

REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

# Never mutated in place: set_fields() sets a new dict.
_fields: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("ts2s_log_fields", default={})  # noqa: B039


def new_request_id() -> str:
    return secrets.token_hex(8)


def start_request(metadata: Iterable[tuple[str, object]] | None = None) -> str:
    """Begin an RPC's log context; returns its request id."""
    request_id = ""
    for k, v in metadata or ():
        if k.lower() == REQUEST_ID_HEADER:
            value = v.decode(errors="replace") if isinstance(v, bytes) else str(v)
            if _SAFE_ID.fullmatch(value):
                request_id = value
            break
    request_id = request_id or new_request_id()
    _fields.set({"request_id": request_id})
    return request_id


def set_fields(**fields: str) -> None:
    """Add fields to the current context (copy-on-write: a parent task is not affected)."""
    _fields.set({**_fields.get(), **{k: v for k, v in fields.items() if v}})


def current() -> dict[str, str]:
    return dict(_fields.get())


def request_id() -> str:
    return _fields.get().get("request_id", "")


def outgoing_metadata() -> tuple[tuple[str, str], ...]:
    """Metadata that carries the request id to a downstream service."""
    rid = request_id()
    return ((REQUEST_ID_HEADER, rid),) if rid else ()


class ContextFilter(logging.Filter):
    """Adds the current request's fields to each record (explicit extras win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _fields.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


_PATTERNS = (
    # an authorization-like header: its whole value, whatever the scheme or encoding
    (re.compile(r"(?i)((?:proxy-)?authori[sz]ation|x-api-key)([\"']?\s*[:=,]\s*).*"), r"\1\2[REDACTED]"),
    (re.compile(r"(?i)\b(bearer|basic|digest|negotiate)(\s+)[^\s'\",]+"), r"\1\2[REDACTED]"),
    (re.compile(r"ts2s_\S*"), "ts2s_[REDACTED]"),  # a key, up to a stray byte's tail
    (re.compile(r"(?i)((?:rediss?|https?|grpcs?|amqp|postgres(?:ql)?)://[^:/@\s]*:)[^@\s]+@"), r"\1[REDACTED]@"),
    (
        re.compile(r"(?i)((?:password|passwd|secret|api[_-]?key|token)[\"']?\s*[=:]\s*[\"']?)[^\s'\",}]+"),
        r"\1[REDACTED]",
    ),
)


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactFilter(logging.Filter):
    """Scrubs secrets from the message, its arguments and string extras before formatting."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's problem, not ours
            return True
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        for key, value in list(record.__dict__.items()):
            if key in ("msg", "args") or key.startswith("_"):
                continue
            if isinstance(value, str) and key not in _STD_ATTRS:
                cleaned = redact(value)
                if cleaned != value:
                    setattr(record, key, cleaned)
        if record.exc_info and record.exc_info[1] is not None:
            # The JSON formatter writes extras as fields: the redacted traceback goes in `exc`.
            record.exc = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info, record.exc_text = None, None
        return True


_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__)


def install(logger: logging.Logger | None = None) -> None:
    """Add the filters to every handler of `logger` (default root). Idempotent."""
    root = logger or logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        if not any(isinstance(f, RedactFilter) for f in handler.filters):
            handler.addFilter(RedactFilter())


class RequestIdInterceptor(grpc.aio.ServerInterceptor):
    """For internal services: each RPC's log lines carry the caller's `x-request-id` (the
    gateway forwards its own), or a fresh one."""

    async def intercept_service(self, continuation, handler_call_details):
        start_request(handler_call_details.invocation_metadata)
        return await continuation(handler_call_details)
