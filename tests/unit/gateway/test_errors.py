"""Bad input, sessions, limits, downstream failures: status codes and in-band errors."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from telugu_s2s.v1 import conversation_pb2 as pb

from .conftest import LiveCall, audio_messages, config_message, control, silence
from .fakes import FakeS2SUnavailable, wait_for

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def one_turn(phrase) -> list[pb.ClientMessage]:
    return audio_messages(np.concatenate([silence(300), phrase, silence(700)]))


@pytest.mark.parametrize(
    "messages, needle",
    [
        ([pb.ClientMessage(audio=pb.AudioChunk(audio=b"\0\0" * 320))], "first message of a call must be a SessionConfig"),
        ([control(pb.Control.COMMIT_TURN)], "first message of a call must be a SessionConfig"),
        ([], "SessionConfig first"),
        ([config_message(voice="sita")], "valid voices: arjun, ravi, priya, lakshmi"),
        ([config_message(input_format=pb.AudioFormat(encoding=pb.PCM16, sample_rate_hz=44100))], "44100"),
        ([config_message(output_format=pb.AudioFormat(encoding=pb.PCM16, sample_rate_hz=11025))], "output_format"),
        ([config_message(input_format=pb.AudioFormat(encoding=pb.MULAW, sample_rate_hz=16000))], "MULAW audio must be 8000 Hz"),
        ([config_message(input_format=pb.AudioFormat(encoding=7))], "input_format.encoding 7 is not supported"),
        ([config_message(session_id="not-a-session")], "malformed session_id"),
        ([config_message(session_id="A" * 32)], "malformed session_id"),
        ([config_message(vad=pb.VadSettings(aggressiveness=5))], "vad.aggressiveness must be 0..3"),
        ([config_message(vad=pb.VadSettings(silence_duration_ms=50))], "vad.silence_duration_ms"),
        ([config_message(turn_detection=pb.TurnDetection(mode=9))], "turn_detection.mode 9 is not known"),
        ([config_message(turn_detection=pb.TurnDetection(eagerness=7))], "turn_detection.eagerness 7 is not known"),
        ([config_message(turn_detection=pb.TurnDetection(max_wait_ms=100))], "turn_detection.max_wait_ms must be 200..5000"),
        ([config_message(), pb.ClientMessage(audio=pb.AudioChunk(audio=b"\0\0" * 3201))], "too long; send 10-200 ms"),
        ([config_message(), pb.ClientMessage(audio=pb.AudioChunk(audio=b"\0" * 321))], "even byte count"),
        ([config_message(), pb.ClientMessage(audio=pb.AudioChunk(audio=b""))], "empty audio chunk; send 10-200 ms"),
        ([config_message(), pb.ClientMessage(audio=pb.AudioChunk(audio=b"\0\0" * 64))],
         "audio chunk of 4 ms (128 bytes of PCM16 at 16000 Hz) is too short; send 10-200 ms"),
        (
            [
                config_message(input_format=pb.AudioFormat(encoding=pb.MULAW)),
                pb.ClientMessage(audio=pb.AudioChunk(audio=b"\xff" * 79)),
            ],
            "too short",
        ),
        (
            [
                config_message(input_format=pb.AudioFormat(encoding=pb.ALAW)),
                pb.ClientMessage(audio=pb.AudioChunk(audio=b"\xd5" * 1601)),
            ],
            "too long",
        ),
        ([config_message(), config_message()], "SessionConfig may be sent only once"),
        ([config_message(), control(pb.Control.SET_VOICE, "sita")], "SET_VOICE: unknown voice 'sita'"),
        ([config_message(), control(pb.Control.SET_VOICE)], "SET_VOICE needs Control.voice"),
        ([config_message(), control(pb.Control.TYPE_UNSPECIFIED)], "Control.type 0 is not supported"),
        ([config_message(), pb.ClientMessage()], "empty ClientMessage"),
    ],
)
async def test_bad_input_is_invalid_argument(stack, messages, needle):
    res = await stack.call(messages)
    assert res.code == INVALID, (res.code, res.details)
    assert needle in res.details
    await wait_for(lambda: stack.gateway.servicer.active_calls == 0, what="call cleanup")


@pytest.mark.parametrize("n_samples", [160, 3200])  # 10 ms and 200 ms at 16 kHz
async def test_chunks_at_the_limits_are_accepted(stack, n_samples):
    res = await stack.call([config_message(), pb.ClientMessage(audio=pb.AudioChunk(audio=b"\0\0" * n_samples))])
    assert res.code.name == "OK", res.details


async def test_resume_keeps_voice_and_context(stack, telugu_speech):
    first = await stack.call([config_message(voice="arjun"), *one_turn(telugu_speech[0])])
    session_id = first.of("session_started")[0].session_id
    res = await stack.call([config_message(session_id=session_id), *one_turn(telugu_speech[1])])
    assert res.code.name == "OK", res.details
    started = res.of("session_started")[0]
    assert started.resumed and started.session_id == session_id
    assert started.voice == "arjun" and started.turns_in_context == 1
    assert res.of("response_done")[0].turns_in_context == 2
    req = stack.generator.requests[-1]
    assert req.voice_index == 0 and req.context_segments.size == 2
    # Replies are asked for 2 frames first, then in blocks growing to the configured size.
    assert (req.params.frames_per_response, req.params.max_frames_per_response) == (2, 16)


async def test_resume_with_a_new_voice_persists_it(stack, telugu_speech):
    first = await stack.call([config_message(voice="arjun")])
    session_id = first.of("session_started")[0].session_id
    res = await stack.call([config_message(session_id=session_id, voice="Lakshmi")])
    assert res.of("session_started")[0].voice == "lakshmi"
    assert stack.context.sessions[("", session_id)].record.voice == "lakshmi"


async def test_resume_unknown_session_is_not_found(stack):
    res = await stack.call([config_message(session_id="0" * 32)])
    assert res.code == grpc.StatusCode.NOT_FOUND
    assert "leave session_id empty" in res.details


async def test_set_voice_applies_from_the_next_reply_and_is_saved(stack, telugu_speech):
    msgs = [
        # Audio goes in faster than real time: without barge_in=False turn 2 would interrupt reply 1.
        config_message(voice="priya", barge_in=False),
        *one_turn(telugu_speech[0]),
        control(pb.Control.SET_VOICE, "ravi"),
        *one_turn(telugu_speech[1]),
    ]
    res = await stack.call(msgs)
    assert res.code.name == "OK", res.details
    assert [r.voice for r in res.of("response_started")] == ["priya", "ravi"]
    assert [r.voice_index for r in stack.generator.requests] == [2, 1]
    session_id = res.of("session_started")[0].session_id
    await wait_for(lambda: stack.context.sessions[("", session_id)].record.voice == "ravi", what="voice saved")


async def test_max_calls_is_resource_exhausted(make_stack):
    stack = await make_stack(cfg_kw={"max_calls": 1})
    live = LiveCall(stack.stub)
    await live.send(config_message())
    await live.wait("session_started")
    res = await stack.call([config_message()])
    assert res.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit of 1 concurrent calls" in res.details
    assert (await live.finish()).code.name == "OK"
    assert (await stack.call([config_message()])).code.name == "OK"


async def test_idle_timeout_is_deadline_exceeded(make_stack):
    stack = await make_stack(cfg_kw={"idle_timeout_s": 0.3})
    live = LiveCall(stack.stub)
    await live.send(config_message(), *audio_messages(silence(100)))
    res = await live.ended()
    assert res.code == grpc.StatusCode.DEADLINE_EXCEEDED and "no message from the caller" in res.details


async def test_max_call_length_is_resource_exhausted(make_stack):
    from .fuzz_strategies import CLIENT_WRITE_RACE, server_codes

    before = server_codes().get("RESOURCE_EXHAUSTED", 0)
    stack = await make_stack(cfg_kw={"max_call_s": 0.5})
    live = LiveCall(stack.stub)
    await live.send(config_message())

    async def keep_talking():
        while not live._reader.done():
            await live.send(*audio_messages(silence(20)))
            await asyncio.sleep(0.02)

    talker = asyncio.create_task(keep_talking())
    try:
        res = await live.ended()
    finally:
        talker.cancel()
        await asyncio.gather(talker, return_exceptions=True)
    assert server_codes().get("RESOURCE_EXHAUSTED", 0) == before + 1
    if (res.code, res.details) != CLIENT_WRITE_RACE:  # the talker wrote after the end
        assert res.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "maximum call length" in res.details


async def test_context_down_at_start_is_unavailable_naming_it(stack):
    stack.context.unavailable = True
    res = await stack.call([config_message()])
    assert res.code == grpc.StatusCode.UNAVAILABLE and "context service" in res.details


@pytest.mark.parametrize("which, needle", [("codec", "codec service"), ("s2s", "s2s model (Triton)"), ("context", "context service")])
async def test_downstream_not_ready_is_unavailable_naming_it(stack, which, needle):
    if which == "codec":
        await stack.codec.set_healthy(False)
    elif which == "s2s":
        stack.generator.is_ready = False
    else:
        await stack.context.set_healthy(False)
    assert not await stack.gateway.monitor.check_once()
    res = await stack.call([config_message()])
    assert res.code == grpc.StatusCode.UNAVAILABLE and needle in res.details


async def test_commit_turn_without_speech_is_an_inband_error(stack):
    res = await stack.call([config_message(), *audio_messages(silence(200)), control(pb.Control.COMMIT_TURN)])
    assert res.code.name == "OK"
    errors = res.of("error")
    assert [e.code for e in errors] == ["TURN_TOO_SHORT"]


async def test_push_to_talk_commit_turn(stack, telugu_speech):
    p = telugu_speech[0]
    msgs = [config_message(), *audio_messages(np.concatenate([silence(300), p[: len(p) // 2]])), control(pb.Control.COMMIT_TURN)]
    res = await stack.call(msgs)
    assert res.code.name == "OK", res.details
    stopped = res.of("speech_stopped")[0]
    assert len(res.of("response_done")) == 1
    assert stopped.decided_at_ms >= stopped.audio_end_ms


async def test_end_of_input_commits_the_turn_in_progress(stack, telugu_speech):
    msgs = [config_message(), *audio_messages(np.concatenate([silence(300), telugu_speech[0]])), control(pb.Control.END_OF_INPUT)]
    res = await stack.call(msgs, half_close=False)
    assert res.code.name == "OK", res.details
    assert len(res.of("response_done")) == 1 and res.of("response_done")[0].audio_ms == 400


async def test_append_failure_is_context_not_saved(stack, telugu_speech):
    stack.context.fail_append = True
    res = await stack.call([config_message(), *one_turn(telugu_speech[0])])
    assert res.code.name == "OK", res.details
    err = res.of("error")[0]
    done = res.of("response_done")[0]
    assert err.code == "CONTEXT_NOT_SAVED" and err.turn_id == done.turn_id
    assert done.audio_ms == 400 and done.turns_in_context == 0


async def test_context_fetch_failure_replies_without_context(stack, telugu_speech):
    stack.context.fail_get_context = True
    res = await stack.call([config_message(), *one_turn(telugu_speech[0])])
    assert [e.code for e in res.of("error")] == ["CONTEXT_UNAVAILABLE"]
    assert res.of("response_done")[0].audio_ms == 400


@pytest.mark.parametrize(
    "setup, code",
    [
        (lambda s: setattr(s.generator, "fail", FakeS2SUnavailable("triton down")), "S2S_UNAVAILABLE"),
        (lambda s: setattr(s.generator, "fail", ValueError("bad request")), "GENERATION_FAILED"),
        (lambda s: setattr(s.codec, "fail_decode", True), "CODEC_UNAVAILABLE"),
        (lambda s: setattr(s.codec, "fail_encode", True), "CODEC_UNAVAILABLE"),
    ],
)
async def test_failed_turn_is_an_inband_error_and_the_call_goes_on(stack, telugu_speech, setup, code):
    setup(stack)
    live = LiveCall(stack.stub)
    await live.send(config_message(), *one_turn(telugu_speech[0]))
    await live.wait("response_done")
    # Repair and talk again: the call survived.
    stack.generator.fail = None
    stack.codec.fail_decode = stack.codec.fail_encode = False
    await live.send(*one_turn(telugu_speech[1]))
    res = await live.finish()
    assert res.code.name == "OK", res.details
    errors = res.of("error")
    dones = res.of("response_done")
    assert [e.code for e in errors] == [code] and errors[0].turn_id == dones[0].turn_id
    assert dones[0].audio_ms == 0 and dones[1].audio_ms == 400
    assert stack.generator.active == 0


async def test_generation_failing_mid_reply(stack, telugu_speech):
    stack.generator.fail_after_blocks = 3
    res = await stack.call([config_message(), *one_turn(telugu_speech[0])])
    assert [e.code for e in res.of("error")] == ["S2S_UNAVAILABLE"]
    # What was generated before the failure still plays.
    assert res.of("response_done")[0].audio_ms == 3 * 40
    assert stack.generator.active == 0
