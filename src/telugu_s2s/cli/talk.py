"""`telugu-s2s talk` and `telugu-s2s voices`: a caller on the command line."""

from __future__ import annotations

import asyncio
import json
import sys

import grpc

from telugu_s2s.client.caller import NO_SPEECH, CallFailed, CallOptions, CallResult, converse
from telugu_s2s.client.wav import WavError, read_wav_as, write_wav
from telugu_s2s.common.audio import G711_RATE, AudioFormatError, Encoding


def summary(result: CallResult) -> dict:
    turn = result.turns[-1] if result.turns else None
    lat = turn.latency if turn else {}
    return {
        "session_id": result.session_id,
        "turn_id": turn.turn_id if turn else "",
        "voice": result.voice,
        "resumed": result.resumed,
        "turns_in_context": turn.turns_in_context if turn else result.turns_in_context_at_start,
        "reply_ms": round(turn.reply_ms, 1) if turn else 0.0,
        "interrupted": bool(turn and turn.interrupted),
        "response_latency_ms": round(lat.get("response_latency_ms", 0.0), 1),
        "voice_to_voice_ms": round(lat.get("voice_to_voice_ms", 0.0), 1),
        "stages": {k: round(v, 1) for k, v in lat.items() if k not in ("response_latency_ms", "voice_to_voice_ms")},
        "untrained_model": result.untrained_model,
        "errors": [list(e) for e in result.errors + (turn.errors if turn else [])],
    }


class NoSpeech(RuntimeError):
    pass


def input_rate(encoding: str, rate: int) -> int:
    """The wire rate: `rate`, or the encoding's default (16000 for PCM16, 8000 for G.711)."""
    return rate or (16000 if Encoding(encoding) is Encoding.PCM16 else G711_RATE)


def run_talk(
    target: str,
    input_path,
    output_path,
    voice: str,
    session: str,
    realtime: bool,
    output_rate: int,
    api_key: str = "",
    ca_file: str = "",
    encoding: str = "pcm16",
    rate: int = 0,
) -> dict:
    """Speak one audio file as one turn (sent as `encoding` at `rate`); save the reply."""
    opts = CallOptions(
        voice=voice,
        session_id=session,
        realtime=realtime,
        output_rate=output_rate,
        metadata=(("authorization", f"Bearer {api_key}"),) if api_key else (),
        tls_ca_file=ca_file,
        input_encoding=Encoding(encoding),
        input_rate=input_rate(encoding, rate),
    )
    audio = read_wav_as(input_path, opts.input_format.sample_rate_hz)
    result = asyncio.run(converse(target, [audio], opts))
    if not result.turns:
        raise CallFailed(
            grpc.StatusCode.UNKNOWN,
            "the call ended without a reply: " + "; ".join(f"{c}: {m}" for c, m in result.errors),
        )
    if any(code == NO_SPEECH for code, _ in result.turns[-1].errors):
        raise NoSpeech(f"no speech detected in {input_path}")
    write_wav(output_path, result.turns[-1].reply_pcm(), output_rate)
    return summary(result)


def talk(a) -> int:
    try:
        out = run_talk(
            a.target,
            a.input,
            a.output,
            a.voice,
            a.session,
            a.realtime,
            a.output_rate,
            a.api_key,
            a.ca_file,
            a.encoding,
            a.rate,
        )
    except (WavError, AudioFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (CallFailed, NoSpeech) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if out["untrained_model"]:
        print("warning: the service runs on UNTRAINED weights; the reply is noise", file=sys.stderr)
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def voices(a) -> int:
    from telugu_s2s.v1 import conversation_pb2 as pb
    from telugu_s2s.v1 import conversation_pb2_grpc as pb_grpc

    try:
        with grpc.insecure_channel(a.target) as ch:
            resp = pb_grpc.ConversationStub(ch).ListVoices(pb.ListVoicesRequest(), timeout=5)
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    for v in resp.voices:
        print(f"{v.id:10s} {v.display_name:10s} {v.description}")
    return 0
