"""A caller: streams turns of audio into Converse the way a phone or app would.

Realtime mode paces 20 ms chunks at the wall clock and keeps the line open with
silence while listening (so VAD, barge-in and latency behave as on a real call).
Fast mode sends each utterance at once, followed by enough silence to end the turn.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import grpc
import numpy as np

from telugu_s2s.common.audio import AudioFormat as Fmt
from telugu_s2s.common.audio import Encoding, decode_bytes, encode_samples
from telugu_s2s.v1 import conversation_pb2 as pb
from telugu_s2s.v1 import conversation_pb2_grpc as pb_grpc

CHUNK_MS = 20
INPUT_RATE = 16000
# After an utterance and its pause are sent, how long to wait for the gateway's SpeechStarted
# before the turn counts as holding no speech (a NO_SPEECH error on that turn).
NO_SPEECH_GRACE_S = 2.0
NO_SPEECH = "NO_SPEECH"


@dataclass
class TurnResult:
    turn_id: str = ""
    reply: list[np.ndarray] = field(default_factory=list)
    reply_ms: float = 0.0
    interrupted: bool = False
    played_ms: int = 0
    latency: dict[str, float] = field(default_factory=dict)
    turns_in_context: int = 0
    # Client-side clocks (seconds, time.monotonic).
    speech_started_at: float | None = None
    speech_stopped_at: float | None = None
    first_audio_at: float | None = None
    # Realtime only: when the last audible sample of the utterance this turn answers was spoken
    # (the caller's clock), so voice-to-voice can be measured where the caller hears it.
    voiced_end_at: float | None = None
    last_audio_at: float | None = None
    interrupted_at: float | None = None
    received_ms_at_interrupt: float = 0.0  # reply audio received when the barge-in was reported
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def player_ms_at_interrupt(self) -> float | None:
        """What a real-time player started at the first reply chunk had played when the
        barge-in was reported (SpeechStarted): the check on the server's played_ms."""
        if self.interrupted_at is None or self.first_audio_at is None:
            return None
        return min(self.received_ms_at_interrupt, (self.interrupted_at - self.first_audio_at) * 1000.0)

    @property
    def caller_voice_to_voice_ms(self) -> float | None:
        """From the end of the caller's last audible sample to the first reply audio received."""
        if self.voiced_end_at is None or self.first_audio_at is None:
            return None
        return (self.first_audio_at - self.voiced_end_at) * 1000.0

    def reply_pcm(self) -> np.ndarray:
        return np.concatenate(self.reply) if self.reply else np.zeros(0, np.int16)


@dataclass
class CallResult:
    session_id: str = ""
    resumed: bool = False
    voice: str = ""
    turns_in_context_at_start: int = 0
    untrained_model: bool = False
    output_rate: int = INPUT_RATE
    turns: list[TurnResult] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class CallOptions:
    voice: str = ""
    session_id: str = ""
    realtime: bool = True
    silence_ms: int = 500  # VAD silence that ends a turn (sent to the gateway)
    # How the gateway ends turns: "" (its default), "silence" or "turn_model"; with the model,
    # "low", "medium" or "high" eagerness ("" = the gateway's default).
    turn_detection: str = ""
    eagerness: str = ""
    pause_ms: int = 600  # silence the caller leaves after each utterance
    barge_in_after_ms: int = 400  # how far into a reply a barging caller starts talking
    barge_in_on: tuple[int, ...] = ()  # utterance indexes (>= 1) spoken over the previous reply
    output_rate: int = INPUT_RATE
    turn_timeout_s: float = 60.0
    metadata: tuple[tuple[str, str], ...] = ()
    tls_ca_file: str = ""  # TLS to the gateway, verified against this CA (PEM); "" = plaintext
    # What goes on the wire: utterances are int16 at input_rate, sent in input_encoding
    # (telephony: MULAW or ALAW at 8000 Hz).
    input_encoding: Encoding = Encoding.PCM16
    input_rate: int = INPUT_RATE

    @property
    def input_format(self) -> Fmt:
        return Fmt(self.input_encoding, self.input_rate).validate()


class CallFailed(RuntimeError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


AUDIBLE = 30  # int16 magnitude (about -60 dBFS): the caller's own test for "still speaking"


def last_audible(samples: np.ndarray) -> int | None:
    """Index of the last sample above AUDIBLE, or None for silence."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > AUDIBLE)
    return int(loud[-1]) if loud.size else None


def _chunks(samples: np.ndarray, chunk: int, fmt: Fmt) -> list[bytes]:
    """Whole chunks: the last one is filled up with silence (the gateway takes 10-200 ms)."""
    padded = np.concatenate([samples, np.zeros(-len(samples) % chunk, samples.dtype)])
    return [encode_samples(padded[i : i + chunk], fmt) for i in range(0, len(padded), chunk)]


_WIRE_ENCODING = {Encoding.PCM16: pb.PCM16, Encoding.MULAW: pb.MULAW, Encoding.ALAW: pb.ALAW}


_TURN_MODES = {
    "": pb.TurnDetection.MODE_UNSPECIFIED,
    "silence": pb.TurnDetection.SILENCE,
    "turn_model": pb.TurnDetection.TURN_MODEL,
}
_EAGERNESS = {
    "": pb.TurnDetection.EAGERNESS_UNSPECIFIED,
    "low": pb.TurnDetection.LOW,
    "medium": pb.TurnDetection.MEDIUM,
    "high": pb.TurnDetection.HIGH,
}


def turn_detection(mode: str, eagerness: str) -> pb.TurnDetection:
    """The wire form of a turn-detection choice ("" leaves each to the gateway's default)."""
    return pb.TurnDetection(mode=_TURN_MODES[mode], eagerness=_EAGERNESS[eagerness])


async def converse(target: str, utterances: list[np.ndarray], opts: CallOptions) -> CallResult:
    """Speak each utterance (int16 mono at opts.input_rate) as one turn; return what came back."""
    in_fmt = opts.input_format
    chunk = in_fmt.sample_rate_hz * CHUNK_MS // 1000
    silence = encode_samples(np.zeros(chunk, np.int16), in_fmt)
    result = CallResult(output_rate=opts.output_rate)
    out_fmt = Fmt(Encoding.PCM16, opts.output_rate)
    outbox: asyncio.Queue[pb.ClientMessage | None] = asyncio.Queue()
    reply_audio_ms = 0.0
    reply_playing = asyncio.Event()
    current = TurnResult()

    config = pb.SessionConfig(
        session_id=opts.session_id,
        voice=opts.voice,
        input_format=pb.AudioFormat(encoding=_WIRE_ENCODING[in_fmt.encoding], sample_rate_hz=in_fmt.sample_rate_hz),
        output_format=pb.AudioFormat(encoding=pb.PCM16, sample_rate_hz=opts.output_rate),
        vad=pb.VadSettings(silence_duration_ms=opts.silence_ms),
        turn_detection=turn_detection(opts.turn_detection, opts.eagerness),
    )
    await outbox.put(pb.ClientMessage(config=config))

    async def requests():
        while True:
            msg = await outbox.get()
            if msg is None:
                return
            yield msg

    async def send_audio(data: bytes, pace_until: float | None) -> float | None:
        await outbox.put(pb.ClientMessage(audio=pb.AudioChunk(audio=data)))
        if pace_until is None:
            return None
        pace_until += CHUNK_MS / 1000.0
        delay = pace_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        return pace_until

    finished = 0  # turns that ended (done, interrupted, or failed in-band)
    progress = asyncio.Event()
    clock: float | None = None  # realtime pacing: when the next chunk is due

    def finish_turn() -> None:
        nonlocal finished
        finished += 1
        reply_playing.clear()
        progress.set()

    async def wait_or_fill(done, timeout_s: float | None = None) -> None:
        """Keep the line open (realtime) or just wait (fast) until done() holds."""
        nonlocal clock
        deadline = time.monotonic() + (opts.turn_timeout_s if timeout_s is None else timeout_s)
        while not done() and time.monotonic() < deadline:
            if opts.realtime:
                clock = await send_audio(silence, clock)
            else:
                progress.clear()
                try:
                    await asyncio.wait_for(progress.wait(), 0.02)
                except TimeoutError:
                    pass

    voiced_end_at: dict[int, float] = {}  # utterance index -> end of its last audible sample
    speech_starts = 0  # SpeechStarted events seen

    session_ready = asyncio.Event()

    async def speaker():
        nonlocal reply_audio_ms, clock
        # Audio only after the server accepted the config: a call it refuses (unknown session,
        # bad voice) then ends with its real status instead of racing our writes.
        await session_ready.wait()
        clock = time.monotonic() if opts.realtime else None

        def done_or_barging(i: int) -> bool:  # reads the reply's progress live
            return finished >= i or (reply_playing.is_set() and reply_audio_ms >= opts.barge_in_after_ms)

        for i, utt in enumerate(utterances):
            if i > 0:
                if i in opts.barge_in_on:
                    await wait_or_fill(lambda i=i: done_or_barging(i))
                else:
                    await wait_or_fill(lambda i=i: finished >= i)
            reply_audio_ms = 0.0
            starts_before = speech_starts
            end = last_audible(utt)
            for k, data in enumerate(_chunks(utt, chunk, in_fmt)):
                if opts.realtime and end is not None and k == end // chunk:
                    # This chunk is sent at the start of its real-time slot; its last audible
                    # sample is spoken that far into it.
                    voiced_end_at[i] = time.monotonic() + (end - k * chunk + 1) / in_fmt.sample_rate_hz
                clock = await send_audio(data, clock)
            for _ in range(opts.pause_ms // CHUNK_MS):
                clock = await send_audio(silence, clock)
            await wait_or_fill(lambda i=i, b=starts_before: speech_starts > b or finished > i, NO_SPEECH_GRACE_S)
            if speech_starts == starts_before and finished <= i:
                # The gateway heard nothing it took for speech: say so now, not after a timeout.
                result.turns.append(TurnResult(errors=[(NO_SPEECH, f"no speech detected in utterance {i + 1}")]))
                finish_turn()
        await wait_or_fill(lambda: finished >= len(utterances))
        await outbox.put(pb.ClientMessage(control=pb.Control(type=pb.Control.END_OF_INPUT)))
        await outbox.put(None)

    from telugu_s2s.security.tls import ClientTls

    channel = ClientTls(opts.tls_ca_file).aio_channel(target)
    try:
        stub = pb_grpc.ConversationStub(channel)
        call = stub.Converse(requests(), metadata=list(opts.metadata) or None)
        speak_task = asyncio.create_task(speaker())
        awaiting_reply = False
        try:
            async for msg in call:
                kind = msg.WhichOneof("message")
                now = time.monotonic()
                if kind == "session_started":
                    s = msg.session_started
                    result.session_id, result.resumed, result.voice = s.session_id, s.resumed, s.voice
                    result.turns_in_context_at_start = s.turns_in_context
                    result.untrained_model = s.untrained_model
                    session_ready.set()
                elif kind == "speech_started":
                    speech_starts += 1
                    current = TurnResult(speech_started_at=now)
                    if reply_playing.is_set() and result.turns:
                        last_turn = result.turns[-1]
                        last_turn.interrupted_at = now
                        received = sum(len(chunk) for chunk in last_turn.reply)
                        last_turn.received_ms_at_interrupt = 1000.0 * received / opts.output_rate
                elif kind == "speech_stopped":
                    current.speech_stopped_at = now
                    awaiting_reply = True
                elif kind == "response_started":
                    awaiting_reply = False
                    current.turn_id = msg.response_started.turn_id
                    current.voiced_end_at = voiced_end_at.get(len(result.turns))
                    result.turns.append(current)
                    reply_playing.set()
                elif kind == "response_audio":
                    turn = result.turns[-1] if result.turns else current
                    if turn.first_audio_at is None:
                        turn.first_audio_at = now
                    turn.last_audio_at = now
                    pcm = decode_bytes(msg.response_audio.audio, out_fmt)
                    turn.reply.append(pcm)
                    reply_audio_ms += 1000.0 * len(pcm) / opts.output_rate
                elif kind == "response_done":
                    d = msg.response_done
                    turn = result.turns[-1]
                    turn.reply_ms = d.audio_ms
                    turn.turns_in_context = d.turns_in_context
                    lat = d.latency
                    turn.latency = {
                        "response_latency_ms": lat.response_latency_ms,
                        "voice_to_voice_ms": lat.voice_to_voice_ms,
                        "encode_flush_ms": lat.encode_flush_ms,
                        "context_fetch_ms": lat.context_fetch_ms,
                        "first_frame_ms": lat.first_frame_ms,
                        "first_decode_ms": lat.first_decode_ms,
                    }
                    finish_turn()
                elif kind == "response_interrupted":
                    turn = result.turns[-1]
                    turn.interrupted = True
                    turn.played_ms = msg.response_interrupted.played_ms
                    turn.reply_ms = turn.played_ms
                    finish_turn()
                elif kind == "error":
                    e = msg.error
                    (result.turns[-1] if result.turns else result).errors.append((e.code, e.message))
                    if awaiting_reply:
                        # A turn that ended without a reply (e.g. too short) still ends.
                        awaiting_reply = False
                        finish_turn()
        except grpc.aio.AioRpcError as exc:
            raise CallFailed(exc.code(), exc.details() or "") from exc
        finally:
            speak_task.cancel()
            await asyncio.gather(speak_task, return_exceptions=True)
    finally:
        await channel.close()
    return result
