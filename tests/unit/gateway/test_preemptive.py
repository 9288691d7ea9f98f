"""Preemptive replies: prepared while the end-of-turn model leans to "finished", held until the
turn ends, used when it ends there and dropped unheard when the caller goes on.

The model's P(finished) is scripted (TurnModel.prob patched), so what the segmenter asks and
when is the real code path while the answers are known: 0.7 (leaning, under every preset's
threshold) from the first ask until 400 ms of silence, then 1.0 (the turn ends).
"""

from __future__ import annotations

import numpy as np
import pytest

from telugu_s2s.gateway import metrics
from telugu_s2s.gateway.codec_client import CodecClient
from telugu_s2s.gateway.errors import DownstreamError, DownstreamUnavailable
from telugu_s2s.turn.model import TurnModel

from .conftest import audio_messages, config_message, silence, start_stack, stop_stack
from .fakes import FakeCodec

END_AT_MS = 400


@pytest.fixture
def scripted_model(monkeypatch):
    asks: list[int] = []

    def prob(self, window, silence_ms):
        asks.append(silence_ms)
        return 1.0 if silence_ms >= END_AT_MS else 0.7

    monkeypatch.setattr(TurnModel, "prob", prob)
    return asks


def count(outcome: str) -> float:
    for family in metrics.PREEMPTIVE.collect():
        for s in family.samples:
            if s.name.endswith("_total") and s.labels.get("outcome") == outcome:
                return s.value
    return 0.0


async def converse(preempt_at: float, audio: np.ndarray, *, real_time: bool = False):
    """One call; `real_time` sends the audio at its own pace (so held replies get generated)."""
    stack = await start_stack(cfg_kw={"turn_detection": "turn_model", "preempt_at": preempt_at})
    try:
        before = {o: count(o) for o in ("used", "dropped")}
        res = await stack.call([config_message(voice="priya"), *audio_messages(audio)], pace_s=0.02 if real_time else 0)
        after = {o: count(o) - before[o] for o in before}
        stored = stack.context.turns_of(res.of("session_started")[0].session_id)
        return res, after, stack.generator.requests, stored
    finally:
        await stop_stack(stack)


def reply_audio(res) -> bytes:
    return b"".join(m.audio for m in res.of("response_audio"))


async def test_a_turn_that_ends_where_the_model_leaned_gets_the_held_reply(scripted_model, telugu_speech):
    audio = np.concatenate([silence(300), telugu_speech[1], silence(1500)])
    res, outcomes, requests, stored = await converse(0.5, audio)
    assert res.code.name == "OK", res.details
    assert outcomes["used"] >= 1
    # The turn's own request is the held one: the last request answered the whole turn.
    plain, plain_outcomes, plain_requests, plain_stored = await converse(0.0, audio)
    assert plain_outcomes == {"used": 0, "dropped": 0} and len(plain_requests) == 1
    assert np.array_equal(requests[-1].user_codes, plain_requests[0].user_codes)
    assert reply_audio(res) == reply_audio(plain) != b""
    assert len(stored) == len(plain_stored) == 1
    assert stored[0].user_codes == plain_stored[0].user_codes
    # Nothing of the reply is heard before the turn was decided and the response started.
    kinds = [k for k in res.kinds() if k != "session_started"]
    first_audio = kinds.index("response_audio")
    assert kinds[:first_audio] == ["speech_started", "speech_stopped", "response_started"], kinds
    (stop,) = res.of("speech_stopped")
    # Ended by the model at 1.0: from END_AT_MS, after the preset's asks in a row (20 ms apart).
    assert stop.reason == "turn_model" and END_AT_MS <= stop.decided_at_ms - stop.audio_end_ms <= END_AT_MS + 60
    # Every request but the used one was dropped (some are dropped before they reach the model).
    assert len(requests) - 1 <= outcomes["dropped"]


async def test_a_caller_who_goes_on_never_hears_the_dropped_reply(scripted_model, telugu_speech):
    # A 300 ms pause: the model leans at 100 ms, the caller speaks again at 300 ms.
    audio = np.concatenate([silence(300), telugu_speech[0], silence(300), telugu_speech[1], silence(1500)])
    res, outcomes, requests, stored = await converse(0.5, audio, real_time=True)
    plain, _, plain_requests, plain_stored = await converse(0.0, audio)
    assert res.code.name == "OK", res.details
    assert len(res.of("speech_stopped")) == len(res.of("response_done")) == 1  # one turn, one reply
    assert outcomes["dropped"] >= 1 and outcomes["used"] == 1
    # At the caller's pace the held replies were generated (and decoded) before being dropped.
    assert len(requests) == outcomes["dropped"] + 1
    # The reply heard is the one for the whole turn, exactly as without preemption.
    assert np.array_equal(requests[-1].user_codes, plain_requests[0].user_codes)
    assert reply_audio(res) == reply_audio(plain)
    assert stored[0].user_codes == plain_stored[0].user_codes
    # Dropped requests heard less of the turn than the one that answered it.
    assert all(r.user_codes.shape[1] < requests[-1].user_codes.shape[1] for r in requests[:-1])


async def test_preemption_is_off_in_silence_mode_and_at_zero(scripted_model, telugu_speech):
    audio = np.concatenate([silence(300), telugu_speech[1], silence(1500)])
    stack = await start_stack(cfg_kw={"turn_detection": "silence", "preempt_at": 0.5})
    try:
        before = count("used") + count("dropped")
        res = await stack.call([config_message(), *audio_messages(audio)])
        assert res.code.name == "OK" and len(stack.generator.requests) == 1
        assert count("used") + count("dropped") == before
    finally:
        await stop_stack(stack)


async def test_encode_prefix_is_the_start_of_what_finish_returns():
    codec = await FakeCodec.start()
    client = CodecClient(codec.target)
    try:
        info = await client.info()
        rng = np.random.default_rng(0)
        audio = (rng.standard_normal(16000) * 3000).astype(np.int16)
        stream = client.encoder(info)
        await stream.push(audio[:8000])
        early = await stream.prefix(20)
        await stream.push(audio[8000:])
        codes = await stream.finish()
        assert early.shape == (info.n_codebooks, 20)
        assert np.array_equal(early, codes[:, :20])
        # Asking for more than the stream will ever hold returns what it held once it ended.
        stream = client.encoder(info)
        await stream.push(audio[:3200])
        whole = await stream.finish()
        assert np.array_equal(await stream.prefix(1000), whole)
        # A failed stream raises what finish() would.
        codec.fail_encode = True
        stream = client.encoder(info)
        await stream.push(audio[:320])
        with pytest.raises((DownstreamUnavailable, DownstreamError)):
            await stream.prefix(5)
        await stream.cancel()
    finally:
        await client.close()
        await codec.stop()


async def test_a_held_reply_reports_its_context_error_only_if_its_turn_is_taken_up(scripted_model, telugu_speech):
    """The context service is down: the caller hears of it once, for the turn it had, after
    ResponseStarted; the dropped replies' fetches (same failure) never reach it."""
    audio = np.concatenate([silence(300), telugu_speech[0], silence(300), telugu_speech[1], silence(1500)])
    stack = await start_stack(cfg_kw={"turn_detection": "turn_model", "preempt_at": 0.5})
    try:
        dropped = count("dropped")
        stack.context.fail_get_context = True
        res = await stack.call([config_message(voice="priya"), *audio_messages(audio)], pace_s=0.02)
    finally:
        await stop_stack(stack)
    assert res.code.name == "OK", res.details
    assert count("dropped") > dropped
    errors = res.of("error")
    assert [e.code for e in errors] == ["CONTEXT_UNAVAILABLE"], errors
    (started,) = res.of("response_started")
    assert errors[0].turn_id == started.turn_id
    kinds = res.kinds()
    assert kinds.index("response_started") < kinds.index("error") < kinds.index("response_done")


async def test_a_forced_end_drops_the_held_reply_and_cancels_its_generation(scripted_model, telugu_speech):
    """END_OF_INPUT 250 ms into the silence (the model leaned at 100 ms): the turn is forced, so
    its codes are all the audio, not the held reply's; the held generation is cancelled."""
    audio = np.concatenate([silence(300), telugu_speech[1], silence(250)])
    stack = await start_stack(cfg_kw={"turn_detection": "turn_model", "preempt_at": 0.5})
    try:
        stack.generator.block_delay_s = 0.05  # a generation of 0.5 s: still running at the end
        dropped = count("dropped")
        res = await stack.call([config_message(voice="priya"), *audio_messages(audio)], pace_s=0.02)
        assert res.code.name == "OK", res.details
        assert [s.reason for s in res.of("speech_stopped")] == ["forced"]
        assert count("dropped") == dropped + 1
        requests = stack.generator.requests
        assert len(requests) == 2 and stack.generator.cancelled >= 1 and stack.generator.active == 0
        assert requests[1].user_codes.shape[1] > requests[0].user_codes.shape[1]
        assert len(res.of("response_done")) == 1
    finally:
        await stop_stack(stack)
