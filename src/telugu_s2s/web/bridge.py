"""One browser WebSocket <-> one gateway Converse stream.

Browser -> bridge: text frames are JSON commands
  {"type": "start", "voice": "priya", "session_id": ""}   opens the call
  {"type": "set_voice", "voice": "arjun"}                   SET_VOICE (from the next reply)
  {"type": "interrupt"} | {"type": "commit"} | {"type": "end"}
and binary frames are microphone audio: PCM16 little-endian, mono, 16 kHz.
Bridge -> browser: JSON events (one per gateway message, audio excluded) and binary frames of
reply audio (PCM16, 16 kHz). The bridge holds no conversation logic: the gateway decides.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import grpc

from telugu_s2s.v1 import conversation_pb2 as pb
from telugu_s2s.v1 import conversation_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

RATE = 16000
MAX_QUEUE = 200  # ~4 s of 20 ms chunks; a browser that floods beyond that is cut off


def event_json(msg: pb.ServerMessage) -> dict[str, Any] | None:
    kind = msg.WhichOneof("message")
    if kind == "session_started":
        s = msg.session_started
        return {
            "type": "session_started",
            "session_id": s.session_id,
            "resumed": s.resumed,
            "turns_in_context": s.turns_in_context,
            "voice": s.voice,
            "untrained_model": s.untrained_model,
        }
    if kind == "speech_started":
        return {"type": "speech_started", "at_ms": msg.speech_started.decided_at_ms}
    if kind == "speech_stopped":
        return {"type": "speech_stopped", "at_ms": msg.speech_stopped.decided_at_ms}
    if kind == "response_started":
        r = msg.response_started
        return {"type": "response_started", "turn_id": r.turn_id, "voice": r.voice}
    if kind == "response_done":
        d = msg.response_done
        lat = d.latency
        return {
            "type": "response_done",
            "turn_id": d.turn_id,
            "audio_ms": d.audio_ms,
            "turns_in_context": d.turns_in_context,
            "latency": {
                "response_latency_ms": round(lat.response_latency_ms, 1),
                "voice_to_voice_ms": round(lat.voice_to_voice_ms, 1),
                "encode_flush_ms": round(lat.encode_flush_ms, 1),
                "context_fetch_ms": round(lat.context_fetch_ms, 1),
                "first_frame_ms": round(lat.first_frame_ms, 1),
                "first_decode_ms": round(lat.first_decode_ms, 1),
            },
        }
    if kind == "response_interrupted":
        r = msg.response_interrupted
        return {"type": "response_interrupted", "turn_id": r.turn_id, "played_ms": r.played_ms}
    if kind == "error":
        e = msg.error
        return {"type": "error", "fatal": False, "code": e.code, "message": e.message}
    return None


CONTROLS = {
    "interrupt": pb.Control.INTERRUPT,
    "commit": pb.Control.COMMIT_TURN,
    "end": pb.Control.END_OF_INPUT,
}


async def bridge(ws, channel: grpc.aio.Channel, api_key: str = "") -> None:
    """Serve one browser connection until either side ends it."""
    first = json.loads(await ws.recv())
    if not isinstance(first, dict) or first.get("type") != "start":
        await ws.send(json.dumps({"type": "error", "fatal": True, "message": "first message must be start"}))
        return
    outbox: asyncio.Queue[pb.ClientMessage | None] = asyncio.Queue(MAX_QUEUE)
    await outbox.put(
        pb.ClientMessage(
            config=pb.SessionConfig(
                session_id=str(first.get("session_id") or ""),
                voice=str(first.get("voice") or ""),
                input_format=pb.AudioFormat(encoding=pb.PCM16, sample_rate_hz=RATE),
                output_format=pb.AudioFormat(encoding=pb.PCM16, sample_rate_hz=RATE),
            )
        )
    )

    async def requests():
        while (m := await outbox.get()) is not None:
            yield m

    metadata = [("authorization", f"Bearer {api_key}")] if api_key else None
    call = pb_grpc.ConversationStub(channel).Converse(requests(), metadata=metadata)

    async def from_browser() -> None:
        async for frame in ws:
            if isinstance(frame, bytes):
                msg = pb.ClientMessage(audio=pb.AudioChunk(audio=frame))
            else:
                cmd = json.loads(frame)
                kind = cmd.get("type")
                if kind == "set_voice":
                    msg = pb.ClientMessage(
                        control=pb.Control(type=pb.Control.SET_VOICE, voice=str(cmd.get("voice", "")))
                    )
                elif kind in CONTROLS:
                    msg = pb.ClientMessage(control=pb.Control(type=CONTROLS[kind]))
                else:
                    await ws.send(json.dumps({"type": "error", "fatal": False, "message": f"unknown command {kind!r}"}))
                    continue
            try:
                outbox.put_nowait(msg)
            except asyncio.QueueFull:
                await ws.send(
                    json.dumps({"type": "error", "fatal": True, "message": "audio arrives faster than real time"})
                )
                return
        await outbox.put(None)

    async def to_browser() -> None:
        async for msg in call:
            if msg.WhichOneof("message") == "response_audio":
                await ws.send(msg.response_audio.audio)
                continue
            event = event_json(msg)
            if event is not None:
                await ws.send(json.dumps(event))

    up = asyncio.create_task(from_browser())
    down = asyncio.create_task(to_browser())
    try:
        done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        if down in done:
            down.result()  # raises the gateway's status, if any
            await ws.send(json.dumps({"type": "call_ended"}))
        else:
            up.result()
            await asyncio.wait_for(down, timeout=30)
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
        message = exc.details() or code.name
        if code == grpc.StatusCode.UNAVAILABLE:
            message = f"the voice service is not reachable ({message})"
        await ws.send(json.dumps({"type": "error", "fatal": True, "code": code.name, "message": message}))
    finally:
        for t in (up, down):
            t.cancel()
        call.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
