"""Barge-in, INTERRUPT, barge-in off, and a caller that vanishes mid-reply."""

from __future__ import annotations

import asyncio
import math

import numpy as np

from telugu_s2s.common.codes import from_proto
from telugu_s2s.v1 import conversation_pb2 as pb

from .conftest import LiveCall, audio_messages, config_message, control, silence
from .fakes import wait_for


def turn_audio(phrase) -> list[pb.ClientMessage]:
    return audio_messages(np.concatenate([silence(300), phrase, silence(700)]))


async def start_reply(stack, telugu_speech, **cfg) -> tuple[LiveCall, str]:
    """Open a call, say one phrase, wait for the first reply audio (generation then holds)."""
    stack.generator.reply_frames = 200
    stack.generator.hold = asyncio.Event()
    live = LiveCall(stack.stub)
    await live.send(config_message(**cfg), *turn_audio(telugu_speech[0]))
    audio = await live.wait("response_audio")
    return live, audio[0].turn_id


def kinds_with_turns(messages):
    out = []
    for m in messages:
        kind = m.WhichOneof("message")
        out.append((kind, getattr(getattr(m, kind), "turn_id", "")))
    return out


async def test_barge_in_stops_the_reply_and_becomes_the_next_turn(stack, telugu_speech):
    live, turn1 = await start_reply(stack, telugu_speech)
    # The caller speaks over the reply.
    await live.send(*audio_messages(np.concatenate([silence(100), telugu_speech[1]])))
    interrupted = (await live.wait("response_interrupted"))[0]
    assert interrupted.turn_id == turn1
    await wait_for(lambda: stack.generator.cancelled == 1, what="generation cancelled")
    assert stack.generator.active == 0
    stack.generator.hold.set()  # let the next reply run through
    await live.send(*audio_messages(silence(700)), control(pb.Control.END_OF_INPUT))
    res = await live.finish()
    assert res.code.name == "OK", res.details

    seq = kinds_with_turns(res.messages)
    second_speech = [i for i, (k, _) in enumerate(seq) if k == "speech_started"][1]
    # No audio of the interrupted reply after the speech-start decision.
    assert not [k for k, t in seq[second_speech:] if k == "response_audio" and t == turn1]
    sent = sum(len(a.audio) // 2 for a in res.of("response_audio") if a.turn_id == turn1)
    # Heard: real-time playback since the first chunk, at most what was sent (this caller
    # speaks at once, so little of it had played).
    assert 0 <= interrupted.played_ms <= round(sent * 1000 / 16000)
    dones = res.of("response_done")
    assert len(dones) == 1 and dones[0].turn_id != turn1

    # Stored: the truncated reply (frames up to what was played), then the new turn.
    session_id = res.of("session_started")[0].session_id
    stored = stack.context.turns_of(session_id)
    assert [t.turn_id for t in stored] == [turn1, dones[0].turn_id]
    assert stored[0].interrupted and stored[0].played_ms == interrupted.played_ms
    frames = from_proto(stored[0].reply_codes).shape[1]
    assert frames == math.ceil(interrupted.played_ms * 50 / 1000) and 0 <= frames < 200
    # The second reply saw the first (truncated) turn as context.
    req2 = stack.generator.requests[1]
    assert req2.context_segments.tolist() == [from_proto(stored[0].user_codes).shape[1], frames]


async def test_interrupt_control_stops_the_reply_without_a_new_turn(stack, telugu_speech):
    live, turn1 = await start_reply(stack, telugu_speech)
    await live.send(control(pb.Control.INTERRUPT))
    interrupted = (await live.wait("response_interrupted"))[0]
    assert interrupted.turn_id == turn1
    await wait_for(lambda: stack.generator.cancelled == 1, what="generation cancelled")
    await live.send(control(pb.Control.END_OF_INPUT))
    res = await live.finish()
    assert res.code.name == "OK", res.details
    assert len(res.of("speech_started")) == 1 and not res.of("response_done")
    stored = stack.context.turns_of(res.of("session_started")[0].session_id)
    assert len(stored) == 1 and stored[0].interrupted


async def test_without_barge_in_the_reply_plays_out_and_speech_queues_a_turn(stack, telugu_speech):
    live, turn1 = await start_reply(stack, telugu_speech, barge_in=False)
    await live.send(*turn_audio(telugu_speech[1]))
    await live.wait("speech_stopped", 2)
    stack.generator.hold.set()
    await live.send(control(pb.Control.END_OF_INPUT))
    res = await live.finish()
    assert res.code.name == "OK", res.details
    assert not res.of("response_interrupted")
    dones = res.of("response_done")
    assert [d.turn_id for d in dones][0] == turn1 and len(dones) == 2
    assert dones[0].audio_ms == 200 * 20  # 200 frames at 50 Hz, all played
    seq = kinds_with_turns(res.messages)
    # The second reply starts only after the first is done.
    assert seq.index(("response_started", dones[1].turn_id)) > seq.index(("response_done", turn1))
    assert dones[1].turns_in_context == 2


async def test_caller_vanishing_mid_reply_cancels_everything(stack, telugu_speech):
    live, _ = await start_reply(stack, telugu_speech)
    assert stack.gateway.servicer.active_calls == 1
    live.cancel()
    await wait_for(lambda: stack.gateway.servicer.active_calls == 0, what="call cleanup")
    await wait_for(lambda: stack.generator.active == 0, what="generation cancelled")
    assert stack.generator.cancelled == 1
    await wait_for(lambda: stack.codec.decode_cancelled == 1, what="decode stream cancelled")


async def test_paced_reply_is_cut_where_the_caller_is_listening(telugu_speech):
    """With pacing, audio runs at most the lead ahead of playback, so a barge-in early in a
    long reply leaves most of it unsent (without pacing all of it would already be out)."""
    from .conftest import start_stack, stop_stack

    s = await start_stack(cfg_kw={"playback_lead_ms": 200.0})
    try:
        s.generator.reply_frames = 300  # 6 s of audio at the fake codec's 50 Hz
        live = LiveCall(s.stub)
        await live.send(config_message(), *turn_audio(telugu_speech[0]))
        await live.wait("response_audio")
        # The whole reply is generated and decoded long before it could have been played.
        await wait_for(lambda: s.generator.completed == 1, what="generation finished")
        await asyncio.sleep(0.1)
        await live.send(control(pb.Control.INTERRUPT))
        interrupted = (await live.wait("response_interrupted"))[0]
        await live.send(control(pb.Control.END_OF_INPUT))
        res = await live.finish()
        assert res.code.name == "OK", res.details
        # Only the lead (plus the time it took to interrupt) went out, far from the 6 s.
        sent_ms = round(sum(len(a.audio) // 2 for a in res.of("response_audio")) * 1000 / 16000)
        assert 0 < sent_ms < 3000
        # What was heard: the sent audio less what was still ahead of playback (up to the lead).
        assert sent_ms - 200 - 100 <= interrupted.played_ms < sent_ms
    finally:
        await stop_stack(s)


async def test_barge_in_while_the_written_reply_is_still_playing_interrupts_it(telugu_speech):
    """Every chunk can be written before the caller has heard it (up to the playback lead):
    speaking over that tail still interrupts the reply, it does not count as heard to the end."""
    from .conftest import start_stack, stop_stack

    s = await start_stack(cfg_kw={"playback_lead_ms": 5000.0})
    try:
        s.generator.reply_frames = 150  # 3 s at the fake codec's 50 Hz: all written at once
        live = LiveCall(s.stub)
        await live.send(config_message(), *turn_audio(telugu_speech[0]))
        turn1 = (await live.wait("response_audio"))[0].turn_id
        await wait_for(lambda: s.generator.completed == 1, what="generation finished")
        await asyncio.sleep(0.2)  # the last chunk is out; about 2.5 s of it is still playing
        await live.send(*turn_audio(telugu_speech[1]))
        interrupted = (await live.wait("response_interrupted"))[0]
        assert interrupted.turn_id == turn1
        await live.send(control(pb.Control.END_OF_INPUT))
        res = await live.finish()
        assert res.code.name == "OK", res.details
        assert turn1 not in [d.turn_id for d in res.of("response_done")]
        sent = sum(len(a.audio) // 2 for a in res.of("response_audio") if a.turn_id == turn1)
        assert round(sent * 1000 / 16000) == 3000
        # All 3 s were sent, but the caller had heard only what played until the interruption.
        assert 200 <= interrupted.played_ms < 2500
    finally:
        await stop_stack(s)
