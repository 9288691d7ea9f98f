"""A spoken Telugu conversation through the real services."""

from __future__ import annotations

import asyncio
import re

import grpc
import numpy as np
import pytest

from telugu_s2s.client.caller import CallOptions, converse
from telugu_s2s.client.wav import read_wav_as
from telugu_s2s.v1 import context_pb2, context_pb2_grpc
from telugu_s2s.v1 import conversation_pb2 as pb
from telugu_s2s.v1 import conversation_pb2_grpc as pb_grpc
from tests.support import faults

pytestmark = pytest.mark.e2e

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def talk(stack, wavs, *, voice="", session="", realtime=False, **kw):
    utterances = [read_wav_as(w, 16000) for w in wavs]
    opts = CallOptions(voice=voice, session_id=session, realtime=realtime, **kw)
    return asyncio.run(converse(stack.cfg.gateway_target, utterances, opts))


def context_turns(stack, session_id: str):
    with grpc.insecure_channel(f"{stack.cfg.host}:{stack.cfg.context_port}") as ch:
        stub = context_pb2_grpc.ContextStoreStub(ch)
        resp = stub.GetContext(
            context_pb2.GetContextRequest(session=context_pb2.SessionRef(session_id=session_id)), timeout=5
        )
    return list(resp.turns)


def test_a_full_turn_answers_telugu_speech_with_speech(stack, example_wavs):
    call = talk(stack, [example_wavs["namaskaram"]], voice="priya")
    assert HEX32.match(call.session_id)
    assert call.voice == "priya" and not call.resumed
    assert len(call.turns) == 1, call.errors
    turn = call.turns[0]
    assert turn.turn_id and not turn.interrupted
    reply = turn.reply_pcm()
    assert len(reply) > 1600, "less than 100 ms of reply audio"
    assert np.abs(reply.astype(np.int32)).max() > 100, "the reply is silent"
    lat = turn.latency
    assert lat["response_latency_ms"] > 0
    assert lat["voice_to_voice_ms"] >= lat["response_latency_ms"]
    for stage in ("encode_flush_ms", "context_fetch_ms", "first_frame_ms", "first_decode_ms"):
        assert lat[stage] > 0, stage
    assert turn.turns_in_context == 1
    stored = context_turns(stack, call.session_id)
    assert len(stored) == 1 and stored[0].turn_id == turn.turn_id
    assert stored[0].user_codes.n_frames > 0 and stored[0].reply_codes.n_frames > 0


def test_second_turn_in_the_same_session_sees_the_first(stack, example_wavs):
    first = talk(stack, [example_wavs["naa_peru_ramu"]], voice="arjun")
    second = talk(stack, [example_wavs["naa_peru_emiti"]], session=first.session_id)
    assert second.resumed and second.session_id == first.session_id
    assert second.turns_in_context_at_start == 1
    assert second.voice == "arjun", "a resumed session keeps its voice"
    assert second.turns[-1].turns_in_context == 2
    with grpc.insecure_channel(stack.cfg.gateway_target) as ch:
        info = pb_grpc.ConversationStub(ch).GetSession(pb.GetSessionRequest(session_id=first.session_id), timeout=5)
    assert info.turn_count == 2 and info.voice == "arjun"


def test_two_turns_in_one_call(stack, example_wavs):
    call = talk(stack, [example_wavs["naa_peru_ramu"], example_wavs["naa_peru_emiti"]], voice="lakshmi")
    assert [t.turns_in_context for t in call.turns] == [1, 2]


def test_barge_in_stops_the_reply_and_records_the_interruption(stack, example_wavs):
    # A trained model's reply lasts about a second, so the caller must be heard within it:
    # it starts talking as soon as the reply does (no pause after its question, and without
    # the example's 300 ms of leading silence; the VAD then decides after its 250 ms of
    # speech). The first question is the greeting, whose answer is the longest of the examples'.
    question = read_wav_as(example_wavs["namaskaram"], 16000)
    barge = read_wav_as(example_wavs["vatavaranam"], 16000)
    voiced = np.flatnonzero(np.abs(barge) > 0.02 * np.abs(barge).max())
    opts = CallOptions(voice="ravi", realtime=True, barge_in_on=(1,), barge_in_after_ms=0, pause_ms=0)
    call = asyncio.run(converse(stack.cfg.gateway_target, [question, barge[voiced[0]:]], opts))
    assert len(call.turns) == 2, [t.errors for t in call.turns]
    first = call.turns[0]
    assert first.interrupted, "the caller spoke over the reply but it was not interrupted"
    assert first.played_ms > 0
    stored = context_turns(stack, call.session_id)
    assert stored[0].interrupted and stored[0].played_ms == first.played_ms
    assert not call.turns[1].interrupted


def test_session_resumes_after_a_gateway_restart(stack, example_wavs):
    first = talk(stack, [example_wavs["naa_peru_ramu"]], voice="lakshmi")
    exit_code = faults.restart(stack, "gateway")
    assert exit_code == 0, "the gateway did not drain and exit cleanly on SIGTERM"
    again = talk(stack, [example_wavs["naa_peru_emiti"]], session=first.session_id)
    assert again.resumed and again.voice == "lakshmi"
    assert again.turns_in_context_at_start == 1
    assert again.turns[-1].turns_in_context == 2


def test_voice_to_voice_is_measured_by_the_caller_and_the_gateway_agrees(stack, example_wavs):
    """The caller's clock runs from its last audible sample to the first reply audio it gets.
    The gateway's figure starts at the VAD's end of speech, which must not lag the audio."""
    call = talk(stack, [example_wavs["namaskaram"]], voice="ravi", realtime=True, turn_detection="silence")
    assert len(call.turns) == 1, call.errors
    turn = call.turns[0]
    caller_v2v, gateway_v2v = turn.caller_voice_to_voice_ms, turn.latency["voice_to_voice_ms"]
    assert caller_v2v is not None and caller_v2v >= 500  # SILENCE: the turn ends after 500 ms of silence
    # Same moment seen from both ends: transport and scheduling only, and no VAD lag (which
    # once made the gateway's end of speech ~120 ms late and its figure that much short).
    assert -40 <= caller_v2v - gateway_v2v <= 300, (caller_v2v, gateway_v2v)
