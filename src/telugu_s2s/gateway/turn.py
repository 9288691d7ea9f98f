"""One turn of a call: what the caller said, the reply, and how long each stage took."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from telugu_s2s.gateway.context_client import Latency
from telugu_s2s.gateway.errors import DownstreamError, DownstreamUnavailable
from telugu_s2s.gateway.output import Reply
from telugu_s2s.gateway.reply import ms_between
from telugu_s2s.gateway.vad import SpeechEnd


class TurnTooShort(Exception):
    pass


@dataclass
class Turn:
    id: str
    speech: SpeechEnd
    t_decided: float
    voice: str
    reply: Reply
    prev: Turn | None
    codes_task: asyncio.Task | None = None
    task: asyncio.Task | None = None
    pipeline: asyncio.Task | None = None
    encode_done_t: float | None = None
    context_fetch_ms: float = 0.0
    interrupted: str = ""  # "", "barge_in" or "control"
    interrupt_t: float = 0.0
    finished: bool = False  # every reply chunk was written or dropped, and played out
    playing_out: asyncio.Event | None = None  # set while the written reply still plays (_play_out)
    # A reply prepared before the turn ended (preemptive) writes no audio until this is set,
    # and the in-band errors it meets meanwhile wait here (sent if the turn is taken up).
    gate: asyncio.Event | None = None
    held_errors: list[tuple[str, str]] = field(default_factory=list)

    def played_ms(self) -> int:
        """What the caller heard of the reply: all that was sent, or for an interrupted reply
        what had played by the interruption (the rest was sent ahead but never heard)."""
        if self.interrupted:
            return self.reply.heard_ms(self.interrupt_t)
        return self.reply.sent_ms

    def latency(self) -> Latency:
        """The stage timings of this turn (response latency from the end-of-speech decision)."""
        r = self.reply
        response = ms_between(self.t_decided, r.first_write_t)
        hangover = self.speech.decided_at_ms - self.speech.audio_end_ms
        return Latency(
            response_latency_ms=response,
            voice_to_voice_ms=response + hangover if r.first_write_t is not None else 0.0,
            encode_flush_ms=ms_between(self.t_decided, self.encode_done_t),
            context_fetch_ms=self.context_fetch_ms,
            first_frame_ms=ms_between(r.gen_sent_t, r.first_frame_t),
            first_decode_ms=ms_between(r.first_decode_sent_t, r.first_audio_t),
        )


def classify(exc: BaseException, unavailable_errors: tuple[type[BaseException], ...]) -> tuple[str, str]:
    """A failed turn's in-band error code and its outcome label."""
    if isinstance(exc, TurnTooShort):
        return "TURN_TOO_SHORT", "too_short"
    if isinstance(exc, (DownstreamUnavailable, DownstreamError)) and exc.service == "codec":
        # A codec stream that fails mid-way often only reports INTERNAL; same outcome for the caller.
        return "CODEC_UNAVAILABLE", "failed"
    if unavailable_errors and isinstance(exc, unavailable_errors):
        return "S2S_UNAVAILABLE", "failed"
    return "GENERATION_FAILED", "failed"
