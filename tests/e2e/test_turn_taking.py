"""Turn-taking through the real gateway: the end-of-turn model against the silence timer."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from telugu_s2s.client.caller import turn_detection
from telugu_s2s.training import synth
from telugu_s2s.training.turn_data import Tune, ssml
from telugu_s2s.v1 import conversation_pb2 as pb
from telugu_s2s.v1 import conversation_pb2_grpc as pb_grpc

pytestmark = pytest.mark.e2e

RATE = 16000
CHUNK = RATE // 50  # 20 ms


def _speak(text: str, tune: Tune) -> np.ndarray:
    import soxr

    caller = synth.MORE_HELD_OUT_VOICES[0]  # a voice the turn model never trained on
    x = synth.speak(ssml(text, tune), caller, pad_ms=0, ssml=True)
    return np.clip(np.round(soxr.resample(x, synth.SAMPLE_RATE, RATE) * 32767 * 0.5), -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def paused_question() -> np.ndarray:
    """ "ఒక్క సెకను," (held level) - 650 ms - "బ్యాంకు ఎప్పుడు తెరుస్తారు?" (falling), then silence."""
    opener = _speak("ఒక్క సెకను,", Tune(15, 105))
    question = _speak("బ్యాంకు ఎప్పుడు తెరుస్తారు?", Tune(-25, 75))
    z = lambda ms: np.zeros(RATE * ms // 1000, np.int16)  # noqa: E731
    audio = np.concatenate([z(400), opener, z(650), question, z(2000)])
    return np.concatenate([audio, np.zeros(-len(audio) % CHUNK, np.int16)])


def _speech_stops(stack, audio: np.ndarray, mode: str) -> list[pb.SpeechStopped]:
    async def run() -> list[pb.SpeechStopped]:
        async def requests():
            cfg = pb.SessionConfig(
                voice="ravi",
                input_format=pb.AudioFormat(encoding=pb.PCM16, sample_rate_hz=RATE),
                vad=pb.VadSettings(silence_duration_ms=500),
                turn_detection=turn_detection(mode, ""),
                barge_in=False,
            )
            yield pb.ClientMessage(config=cfg)
            for i in range(0, len(audio), CHUNK):
                yield pb.ClientMessage(audio=pb.AudioChunk(audio=audio[i : i + CHUNK].astype("<i2").tobytes()))
            yield pb.ClientMessage(control=pb.Control(type=pb.Control.END_OF_INPUT))

        async with grpc.aio.insecure_channel(stack.cfg.gateway_target) as ch:
            stops = []
            async for msg in pb_grpc.ConversationStub(ch).Converse(requests(), timeout=120):
                if msg.WhichOneof("message") == "speech_stopped":
                    stops.append(msg.speech_stopped)
            return stops

    return asyncio.run(run())


def test_the_turn_model_holds_a_turn_through_a_pause_the_timer_cuts(stack, paused_question):
    """One caller turn with a 650 ms pause after a held opener: the 500 ms timer makes it two
    turns; the default end-of-turn model waits, and ends it once, after the falling question."""
    timer = _speech_stops(stack, paused_question, "silence")
    assert [s.reason for s in timer] == ["silence", "silence"], timer
    model = _speech_stops(stack, paused_question, "")
    assert len(model) == 1, model
    assert model[0].reason in ("turn_model", "timer", "max_wait")
    assert abs(model[0].audio_end_ms - timer[1].audio_end_ms) <= 40
    # Confident on the falling question: it ended well before the timer would have.
    assert model[0].reason == "turn_model", model[0]
    assert model[0].decided_at_ms - model[0].audio_end_ms < 500
