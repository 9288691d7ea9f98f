"""The gateway with its real end-of-turn model: the default mode, the API, the reasons."""

from __future__ import annotations

import numpy as np
import pytest

from telugu_s2s.v1 import conversation_pb2 as pb

from .conftest import audio_messages, config_message, silence, start_stack, stop_stack

TURN_MODEL = pb.TurnDetection(mode=pb.TurnDetection.TURN_MODEL)


@pytest.fixture
async def model_stack():
    s = await start_stack(cfg_kw={"turn_detection": "turn_model"})
    yield s
    await stop_stack(s)


def speech_stops(res) -> list[pb.SpeechStopped]:
    return res.of("speech_stopped")


async def test_turn_model_is_the_default_and_says_what_ended_each_turn(model_stack, telugu_speech):
    audio = np.concatenate([silence(300), telugu_speech[0], silence(2000)])
    res = await model_stack.call([config_message(voice="priya"), *audio_messages(audio)])
    assert res.code.name == "OK", res.details
    stops = speech_stops(res)
    assert len(stops) == 1, stops
    # The model ended it, or it waited its longest (1500 ms); never the 500 ms timer.
    assert stops[0].reason in ("turn_model", "max_wait")
    wait = stops[0].decided_at_ms - stops[0].audio_end_ms
    assert wait <= 1500 and (stops[0].reason == "turn_model" or wait == 1500)


async def test_silence_mode_is_the_timer(model_stack, telugu_speech):
    audio = np.concatenate([silence(300), telugu_speech[0], silence(1000)])
    cfg = config_message(turn_detection=pb.TurnDetection(mode=pb.TurnDetection.SILENCE))
    res = await model_stack.call([cfg, *audio_messages(audio)])
    (stop,) = speech_stops(res)
    assert stop.reason == "silence" and stop.decided_at_ms - stop.audio_end_ms == 500


async def test_max_wait_bounds_the_wait(model_stack, telugu_speech):
    """However unsure the model is, no turn waits longer than max_wait_ms."""
    audio = np.concatenate([silence(300), telugu_speech[1], silence(1500)])
    cfg = config_message(turn_detection=pb.TurnDetection(mode=pb.TurnDetection.TURN_MODEL, max_wait_ms=300))
    res = await model_stack.call([cfg, *audio_messages(audio)])
    (stop,) = speech_stops(res)
    assert stop.decided_at_ms - stop.audio_end_ms <= 300


async def test_commit_turn_is_forced(model_stack, telugu_speech):
    audio = np.concatenate([silence(300), telugu_speech[0]])
    msgs = [config_message(turn_detection=TURN_MODEL), *audio_messages(audio)]
    msgs.append(pb.ClientMessage(control=pb.Control(type=pb.Control.COMMIT_TURN)))
    res = await model_stack.call(msgs)
    assert [s.reason for s in speech_stops(res)] == ["forced"]
