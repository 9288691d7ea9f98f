"""Request ids on log lines, and secrets scrubbed from them, through the services' JSON formatter."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from telugu_s2s.common.logs import JsonFormatter
from telugu_s2s.security import logctx


@pytest.fixture
def capture():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    logger = logging.getLogger("ts2s-logctx-test")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logctx.install(logger)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield logger, lines
    logger.handlers.clear()


KEY = "ts2s_0123456789ab.Zm9vYmFyYmF6cXV4cXV1eHl6enk0NTY3ODkwMTIzNDU2"


@pytest.mark.parametrize(
    "text",
    [
        f"authorization: Bearer {KEY}",
        f"key {KEY} rejected",
        "redis://:hunter2-secret@redis:6379/0",
        "password=hunter2-secret",
        '{"api_key": "hunter2-secret"}',
        # a stray byte inside the key: its tail too
        f"invalid metadata value b'Bearer {KEY[:20]}\\xff{KEY[20:]}'",
        f"metadata ('authorization', b'\\xfe\\xff {KEY}')",
        # another scheme, base64 of the key
        "authorization: Basic dHMyc19odW50ZXIyLXNlY3JldA==hunter2-secret",
        "Basic dHMyc19odW50ZXIyLXNlY3JldA==hunter2-secret sent",
        "x-api-key=hunter2-secret",
    ],
)
def test_secrets_are_redacted(capture, text):
    logger, lines = capture
    logger.info("value: %s", text, extra={"detail": text})
    out = json.dumps(lines())
    assert "hunter2-secret" not in out and KEY not in out and "Zm9vYmFy" not in out
    assert "[REDACTED]" in lines()[0]["msg"] and "[REDACTED]" in lines()[0]["detail"]


def test_redaction_keeps_ordinary_text(capture):
    logger, lines = capture
    logger.info("call started", extra={"session_id": "ab" * 16, "voice": "priya"})
    assert lines()[0]["msg"] == "call started" and lines()[0]["session_id"] == "ab" * 16


def test_tracebacks_are_redacted(capture):
    logger, lines = capture
    try:
        raise RuntimeError(f"cannot use Bearer {KEY}")
    except RuntimeError:
        logger.exception("failed")
    out = lines()[0]
    assert "RuntimeError" in out["exc"] and KEY not in json.dumps(out)


async def test_request_id_per_task_and_turn_fields_stay_in_their_task(capture):
    logger, lines = capture

    async def rpc(rid: str) -> None:
        logctx.start_request([("x-request-id", rid)])
        logger.info("call started")

        async def turn(n: int) -> None:
            logctx.set_fields(turn_id=f"{rid}-t{n}")
            await asyncio.sleep(0)
            logger.info("turn finished")

        await asyncio.gather(asyncio.create_task(turn(1)), asyncio.create_task(turn(2)))
        logger.info("call ended")

    await asyncio.gather(asyncio.create_task(rpc("a")), asyncio.create_task(rpc("b")))
    got = lines()
    for rid in ("a", "b"):
        mine = [line for line in got if line.get("request_id") == rid]
        assert [line["msg"] for line in mine].count("turn finished") == 2
        assert {line["turn_id"] for line in mine if line["msg"] == "turn finished"} == {f"{rid}-t1", f"{rid}-t2"}
        assert all("turn_id" not in line for line in mine if line["msg"] != "turn finished")


def test_unsafe_request_ids_are_replaced():
    assert logctx.start_request([("x-request-id", "ok-123")]) == "ok-123"
    rid = logctx.start_request([("x-request-id", "bad id\nwith newline")])
    assert rid != "bad id\nwith newline" and len(rid) == 16
    assert logctx.outgoing_metadata() == (("x-request-id", rid),)
