"""The paced writer: events are never held behind the pacing of reply audio."""

from __future__ import annotations

import asyncio

from telugu_s2s.gateway.events import ResponseAudioEvent, SpeechStartedEvent
from telugu_s2s.gateway.output import PacedOutput, Reply


async def test_an_event_overtakes_audio_that_waits_for_playback():
    sent: list[object] = []

    async def send(event) -> None:
        sent.append(event)

    out = PacedOutput(send, write_stall_s=5.0, playback_lead_ms=100.0)
    out.start()
    reply = Reply(out_rate=16000)
    second = 16000 * 2  # one second of 16-bit samples
    await out.put_audio("t", reply, b"\0" * second, 16000)
    await out.put_audio("t", reply, b"\0" * second, 16000)  # paced: about 0.9 s ahead of playback
    await asyncio.sleep(0.05)
    assert len(sent) == 1
    out.put_event(SpeechStartedEvent(audio_start_ms=0, decided_at_ms=0))  # the caller barges in
    await asyncio.sleep(0.05)
    assert isinstance(sent[-1], SpeechStartedEvent)  # written now, not after the paced audio
    reply.stopped = True  # what the call does on a barge-in: the waiting audio is never sent
    await out.finish()
    assert [type(e) for e in sent] == [ResponseAudioEvent, SpeechStartedEvent]
    assert reply.sent_samples == 16000
