"""A conversation through the gateway, against the in-process fakes."""

from __future__ import annotations

import numpy as np

from telugu_s2s.common.codes import from_proto
from telugu_s2s.v1 import conversation_pb2 as pb

from .conftest import audio_messages, config_message, silence


def speech_with_silences(phrases, gap_ms=1000, lead_ms=500, tail_ms=1000):
    parts = [silence(lead_ms)]
    for p in phrases:
        parts += [p, silence(gap_ms)]
    parts.append(silence(tail_ms - gap_ms) if tail_ms > gap_ms else silence(0))
    return np.concatenate(parts)


async def test_caller_audio_reaches_the_encoder_in_pushes_and_loses_nothing(make_stack, telugu_speech):
    """With encode_push_ms the caller's 20 ms chunks go to the Encode stream in pushes of at
    least that much (speech start and the turn's end send at once): the same codes as every
    chunk sent alone, in a quarter of the messages or fewer."""
    audio = speech_with_silences(telugu_speech[:1])
    codes, messages = {}, {}
    for push_ms in (0.0, 80.0):
        s = await make_stack(cfg_kw={"encode_push_ms": push_ms})
        res = await s.call([config_message(voice="ravi"), *audio_messages(audio)])
        assert res.code.name == "OK", res.details
        assert len(s.generator.requests) == 1
        codes[push_ms] = s.generator.requests[0].user_codes
        messages[push_ms] = list(s.codec.encode_messages)
        assert sum(messages[push_ms]) == s.codec.encoded_samples[0]
    assert np.array_equal(codes[0.0], codes[80.0])
    assert sum(messages[0.0]) == sum(messages[80.0])
    assert max(messages[0.0][1:-1]) == 320  # every 20 ms chunk on its own
    # 80 ms at 16 kHz; the first (speech start) and the turn's end (its last audio, then the
    # end of the segment) may be shorter
    assert min(messages[80.0][1:-2]) >= 1280
    assert len(messages[80.0]) * 4 <= len(messages[0.0]) + 8


def test_encode_push_ms_is_checked() -> None:
    import pytest

    from telugu_s2s.gateway.config import Config, ConfigError

    with pytest.raises(ConfigError, match="encode_push_ms"):
        Config(encode_push_ms=250)
    assert Config.from_env([], {"TS2S_GATEWAY_ENCODE_PUSH_MS": "0"}).encode_push_ms == 0


async def test_one_turn_end_to_end(stack, telugu_speech):
    audio = speech_with_silences(telugu_speech[:1])
    res = await stack.call([config_message(voice="ravi"), *audio_messages(audio)])
    assert res.code.name == "OK", res.details
    kinds = res.kinds()
    assert kinds[0] == "session_started"
    started = res.of("session_started")[0]
    assert started.voice == "ravi" and not started.resumed and len(started.session_id) == 32
    assert started.input_format.encoding == pb.PCM16 and started.input_format.sample_rate_hz == 16000
    order = [k for k in kinds if k != "response_audio"]
    assert order == ["session_started", "speech_started", "speech_stopped", "response_started", "response_done"]
    first_audio = kinds.index("response_audio")
    assert kinds.index("response_started") < first_audio < kinds.index("response_done")

    audio_msgs = res.of("response_audio")
    done = res.of("response_done")[0]
    assert [a.seq for a in audio_msgs] == list(range(len(audio_msgs)))
    assert {a.turn_id for a in audio_msgs} == {done.turn_id}
    out = np.concatenate([np.frombuffer(a.audio, "<i2") for a in audio_msgs])
    # 20 frames of the fake codec at 50 Hz = 400 ms of non-silent audio.
    assert abs(len(out) - 0.4 * 16000) <= 16
    assert np.abs(out).max() > 1000
    assert done.audio_ms == 400
    lat = done.latency
    assert lat.response_latency_ms > 0 and lat.first_frame_ms > 0 and lat.first_decode_ms > 0
    assert lat.encode_flush_ms > 0 and lat.context_fetch_ms > 0
    stopped = res.of("speech_stopped")[0]
    hangover = stopped.decided_at_ms - stopped.audio_end_ms
    assert abs(lat.voice_to_voice_ms - (lat.response_latency_ms + hangover)) < 1e-6
    assert done.turns_in_context == 1

    # The generator got the user's codes and the chosen voice; the turn was stored.
    req = stack.generator.requests[0]
    assert req.voice_index == 1 and req.user_codes.shape[0] == 2 and req.user_codes.shape[1] > 10
    assert req.context_codes.shape == (2, 0) and req.context_segments.size == 0
    turns = stack.context.turns_of(started.session_id)
    assert len(turns) == 1
    t = turns[0]
    assert t.turn_id == done.turn_id and not t.interrupted and t.played_ms == 400 and t.voice == "ravi"
    assert np.array_equal(from_proto(t.user_codes), req.user_codes)
    assert from_proto(t.reply_codes).shape == (2, 20)
    assert t.latency.response_latency_ms == lat.response_latency_ms
