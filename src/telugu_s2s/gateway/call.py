"""One Converse call: the per-call state machine.

    listening --VAD speech start--> user speaking --end of speech--> responding --reply played--> listening

The call runs as a few tasks, all owned here and cancelled and awaited when the call
ends (however it ends, the caller vanishing included):

- reader: reads caller messages, runs the VAD, streams the user's speech into a
  per-turn codec Encode stream (prefix padding included), commits turns, and handles
  controls. It keeps reading while a reply plays (full duplex).
- writer: the only task that writes to the caller. Two lanes (see buffers.Outbox):
  events go first, reply audio is bounded; audio of a stopped reply is dropped, so a
  barge-in stops audio within the chunk being written.
- one task per turn: encode flush + context fetch (concurrently) -> generation ->
  Decode -> reply audio -> ResponseDone / ResponseInterrupted -> AppendTurn. Turns
  run one after another: a turn's reply starts after the previous turn was stored.
- the supervisor (run()) enforces the idle timeout and the maximum call length, and on
  a gateway drain (SIGTERM) stops taking input, lets the replies in flight finish and
  ends the call with UNAVAILABLE so that the caller resumes the session elsewhere.

Limits that protect the gateway from one caller: turns per minute, a writer that has
not been able to write for `write_stall_s` (the caller does not read) and the bounded
Outbox all end the call with RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import numpy as np

from telugu_s2s.common import audio as audio_mod
from telugu_s2s.common.codes import concat
from telugu_s2s.common.voices import DEFAULT_VOICE, UnknownVoiceError, get_voice
from telugu_s2s.gateway import metrics
from telugu_s2s.gateway.auth import KeyEntry, current_principal
from telugu_s2s.gateway.buffers import CLOSED, AudioHistory, Barrier, Outbox, OutboxOverflow
from telugu_s2s.gateway.codec_client import CodecClient, CodecInfo, DecodeStream, EncodeStream
from telugu_s2s.gateway.config import Config
from telugu_s2s.gateway.context_client import ContextClient, Latency, TurnRecord
from telugu_s2s.gateway.downstream import DownstreamMonitor
from telugu_s2s.gateway.errors import CallError, DownstreamError, DownstreamUnavailable, SessionNotFound
from telugu_s2s.gateway.events import (
    AudioInput,
    CallSettings,
    ClientInput,
    ControlInput,
    ControlType,
    ErrorEvent,
    ResponseAudioEvent,
    ResponseDoneEvent,
    ResponseInterruptedEvent,
    ResponseStartedEvent,
    ServerEvent,
    SessionStartedEvent,
    SpeechStartedEvent,
    SpeechStoppedEvent,
)
from telugu_s2s.gateway.generation import S2SGenerator, close_iterator
from telugu_s2s.gateway.vad import VAD_RATE, Segmenter, SpeechEnd, SpeechStart
from telugu_s2s.s2s.protocol import GenerationParams, GenerationRequest, context_from_turns
from telugu_s2s.security import logctx

log = logging.getLogger(__name__)

MIN_CHUNK_MS = 10  # the proto's chunk rule: 10..200 ms of whole samples
MAX_CHUNK_MS = 200
# User codes keep this much audio after the last voiced frame (the rest of the hangover is silence).
USER_TAIL_MS = 100
# Reply audio is sent in chunks of at most this length.
REPLY_CHUNK_MS = 100
# At the end of a call, how long the write in flight may take before it is cancelled.
WRITER_STOP_S = 1.0


@dataclass
class CallDeps:
    codec: CodecClient
    context: ContextClient
    generator: S2SGenerator
    monitor: DownstreamMonitor
    # Exceptions of the generator that mean "the model server is unavailable".
    unavailable_errors: tuple[type[BaseException], ...] = ()
    # Set when the gateway drains (SIGTERM): calls finish their replies and end.
    draining: asyncio.Event = field(default_factory=asyncio.Event)
    # Whether the API key a call was admitted with is still valid (None: no keys, dev mode);
    # checked at each turn, so a revoked key ends the calls it opened at their next turn.
    key_current: Callable[[KeyEntry], bool] | None = None


class TurnTooShort(Exception):
    pass


class GenerationFailed(Exception):
    pass


class WriterStalled(Exception):
    pass


REVOKED_MESSAGE = "the API key of this call was revoked or changed; start a new call with a valid key"

DRAIN_MESSAGE = (
    "this gateway is shutting down; start a new call with session_id {session} to continue "
    "the conversation (its turns are kept)"
)


@dataclass
class Reply:
    """What was produced and what was actually written to the caller."""

    out_rate: int
    stopped: bool = False
    seq: int = 0
    played_samples: int = 0
    generated: list[np.ndarray] = field(default_factory=list)
    gen_error: BaseException | None = None
    gen_sent_t: float | None = None
    first_frame_t: float | None = None
    first_decode_sent_t: float | None = None
    first_audio_t: float | None = None
    first_write_t: float | None = None
    last_write_t: float | None = None

    @property
    def played_ms(self) -> int:
        return int(round(1000.0 * self.played_samples / self.out_rate))


@dataclass
class Turn:
    id: str
    speech: SpeechEnd
    t_decided: float
    voice: str
    reply: Reply
    prev: "Turn | None"
    codes_task: asyncio.Task | None = None
    task: asyncio.Task | None = None
    pipeline: asyncio.Task | None = None
    encode_done_t: float | None = None
    context_fetch_ms: float = 0.0
    interrupted: str = ""  # "", "barge_in" or "control"
    interrupt_t: float = 0.0
    finished: bool = False  # every reply chunk was written or dropped, and played out
    # Set while the written reply is still playing at the caller (see Call._play_out).
    playing_out: asyncio.Event | None = None


@dataclass
class _AudioItem:
    turn: Turn
    data: bytes
    n_samples: int


def _ms(t0: float | None, t1: float | None) -> float:
    if t0 is None or t1 is None:
        return 0.0
    return max(0.0, (t1 - t0) * 1000.0)


class Call:
    def __init__(
        self,
        cfg: Config,
        deps: CallDeps,
        *,
        tenant: str,
        recv: Callable[[], Awaitable[ClientInput | None]],
        send: Callable[[ServerEvent], Awaitable[None]],
    ) -> None:
        self.cfg = cfg
        self.deps = deps
        self.tenant = tenant
        self._recv = recv
        self._send = send
        self._outbox = Outbox()
        self._loop = asyncio.get_running_loop()
        self._t_start = self._loop.time()
        self._last_activity = self._t_start
        self._tasks: set[asyncio.Task] = set()
        self._writer: asyncio.Task | None = None
        self._turns: list[Turn] = []
        self._last_turn: Turn | None = None
        self._encoder: EncodeStream | None = None
        self._encoded_upto = 0
        self._turn_times: deque[float] = deque()
        self._stalled_send: asyncio.Future | None = None
        self.session_id = ""
        self.voice = DEFAULT_VOICE
        self.turns_in_context = 0
        self.settings: CallSettings | None = None
        self.info: CodecInfo | None = None

    # ------------------------------------------------------------------ lifecycle

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _touch(self) -> None:
        self._last_activity = self._loop.time()

    def _busy(self) -> bool:
        return any(t.task is not None and not t.task.done() for t in self._turns)

    def _check_deadlines(self) -> float:
        """Raise CallError when a limit is reached; else return seconds to the next check."""
        now = self._loop.time()
        call_left = self._t_start + self.cfg.max_call_s - now
        if call_left <= 0:
            raise CallError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the call reached the maximum call length of {self.cfg.max_call_s:g} s; "
                "start a new call with this session_id to continue the conversation",
            )
        if self._busy():
            return min(call_left, self.cfg.idle_timeout_s)
        idle_left = self._last_activity + self.cfg.idle_timeout_s - now
        if idle_left <= 0:
            raise CallError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no message from the caller for {self.cfg.idle_timeout_s:g} s; keep sending audio "
                "(silence included) during a call, or send END_OF_INPUT to end it",
            )
        return min(call_left, idle_left)

    async def run(self) -> None:
        """Run the call to its end. Raises CallError for a call that must end with an error status."""
        if self.deps.draining.is_set():
            raise CallError(grpc.StatusCode.UNAVAILABLE, "this gateway is shutting down; retry the call")
        reader = self._spawn(self._read_loop(), "call-reader")
        writer = self._writer = asyncio.create_task(self._write_loop(), name="call-writer")
        drain = self._spawn(self.deps.draining.wait(), "call-drain")
        drained = False
        try:
            while True:
                timeout = self._check_deadlines()
                done, _ = await asyncio.wait(
                    {reader, writer, drain}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if writer in done:
                    writer.result()
                    return
                if reader in done:
                    reader.result()
                    break
                if drain in done:
                    # Take no more input; the replies in flight finish below.
                    drained = True
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
                    break
            # Input ended (END_OF_INPUT or half-close): finish the replies, then end with OK.
            while True:
                pending = {t.task for t in self._turns if t.task is not None and not t.task.done()}
                if not pending:
                    break
                timeout = self._check_deadlines()
                done, _ = await asyncio.wait({*pending, writer}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if writer in done:
                    writer.result()
                    return
            self._outbox.close()
            await writer
            if drained:
                log.info("call drained", extra={"session_id": self.session_id})
                raise CallError(grpc.StatusCode.UNAVAILABLE, DRAIN_MESSAGE.format(session=self.session_id or "(none)"))
        except (OutboxOverflow, WriterStalled) as exc:
            raise CallError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{exc}; read the response stream") from exc
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        for turn in self._turns:
            turn.reply.stopped = True
        encoder, self._encoder = self._encoder, None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # Wait for every task, even if this coroutine is itself being cancelled.
        gathered = asyncio.gather(*tasks, return_exceptions=True)
        try:
            await asyncio.shield(gathered)
        except asyncio.CancelledError:
            await gathered
            raise
        finally:
            if encoder is not None:
                await encoder.cancel()
            await self._stop_writer()

    async def _stop_writer(self) -> None:
        # Cancelling a write in flight can leave the RPC unable to send its status, so the
        # writer is asked to stop after its current write; it is cancelled only if stuck.
        writer = self._writer
        if writer is None or writer.done():
            return
        self._outbox.close(discard=True)
        done, _ = await asyncio.wait({writer}, timeout=WRITER_STOP_S)
        if not done:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    # ------------------------------------------------------------------ reader

    async def _read_loop(self) -> None:
        first = await self._recv()
        self._touch()
        if first is None:
            raise CallError(grpc.StatusCode.INVALID_ARGUMENT, "the call ended before its SessionConfig; send a SessionConfig first")
        if not isinstance(first, CallSettings):
            raise CallError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "the first message of a call must be a SessionConfig; audio and controls may follow it",
            )
        await self._start_session(first)
        while True:
            msg = await self._recv()
            self._touch()
            if msg is None:
                await self._end_of_input()
                return
            if isinstance(msg, AudioInput):
                await self._on_audio(msg.data)
            elif isinstance(msg, ControlInput):
                if msg.type is ControlType.END_OF_INPUT:
                    await self._end_of_input()
                    return
                await self._on_control(msg)
            else:
                raise CallError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "SessionConfig may be sent only once, as the first message; use Control SET_VOICE to change the voice",
                )

    async def _start_session(self, settings: CallSettings) -> None:
        self.settings = settings
        try:
            self.info = self.deps.monitor.require_ready()
        except DownstreamUnavailable as exc:
            raise CallError(grpc.StatusCode.UNAVAILABLE, f"{exc}; retry shortly") from exc
        ctx = self.deps.context
        resumed = bool(settings.session_id)
        try:
            if resumed:
                rec = await ctx.get_session(settings.session_id, self.tenant)
                if settings.voice and settings.voice != rec.voice:
                    rec = await ctx.set_voice(rec.session_id, self.tenant, settings.voice)
                voice = settings.voice or rec.voice or DEFAULT_VOICE
            else:
                voice = settings.voice or DEFAULT_VOICE
                rec = await ctx.create_session(voice, self.tenant)
        except SessionNotFound as exc:
            raise CallError(
                grpc.StatusCode.NOT_FOUND,
                f"session {settings.session_id} not found (unknown or expired); leave session_id empty to start a new session",
            ) from exc
        except DownstreamUnavailable as exc:
            raise CallError(grpc.StatusCode.UNAVAILABLE, f"{exc}; retry shortly") from exc
        except DownstreamError as exc:
            raise CallError(grpc.StatusCode.UNAVAILABLE, f"context service error: {exc}") from exc
        self.session_id = rec.session_id
        self.voice = voice
        self.turns_in_context = rec.turn_count

        in_rate = settings.input_format.sample_rate_hz
        self._to_vad = audio_mod.StreamResampler(in_rate, VAD_RATE)
        self._to_codec = audio_mod.StreamResampler(in_rate, self.info.sample_rate_hz)
        self._segmenter = Segmenter(settings.vad)
        keep_ms = settings.vad.prefix_padding_ms + settings.vad.start_window_ms + MAX_CHUNK_MS + 500
        self._history = AudioHistory(self.info.sample_rate_hz, self.info.sample_rate_hz * keep_ms // 1000)
        log.info(
            "call started",
            extra={"session_id": self.session_id, "resumed": resumed, "voice": voice, "turns": rec.turn_count},
        )
        self._outbox.put_event(
            SessionStartedEvent(
                session_id=self.session_id,
                resumed=resumed,
                turns_in_context=rec.turn_count,
                voice=voice,
                input_format=settings.input_format,
                output_format=settings.output_format,
                untrained_model=self.info.random_weights,
            )
        )

    async def _on_audio(self, data: bytes) -> None:
        assert self.settings is not None
        fmt = self.settings.input_format
        ms = fmt.duration_ms(len(data))
        if not data:
            raise CallError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"empty audio chunk; send {MIN_CHUNK_MS}-{MAX_CHUNK_MS} ms of audio per chunk")
        if not MIN_CHUNK_MS <= ms <= MAX_CHUNK_MS:
            raise CallError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"audio chunk of {ms:g} ms ({len(data)} bytes of {fmt.encoding.name} at {fmt.sample_rate_hz} Hz) "
                f"is too {'long' if ms > MAX_CHUNK_MS else 'short'}; send {MIN_CHUNK_MS}-{MAX_CHUNK_MS} ms per chunk",
            )
        try:
            samples = audio_mod.decode_bytes(data, fmt)
        except audio_mod.AudioFormatError as exc:
            raise CallError(grpc.StatusCode.INVALID_ARGUMENT, f"{exc}; send whole 16-bit samples in each chunk") from exc
        keep_from = self._encoded_upto if self._encoder is not None else None
        self._history.append(self._to_codec.process(samples), keep_from=keep_from)
        for ev in self._segmenter.feed(self._to_vad.process(samples)):
            if isinstance(ev, SpeechStart):
                await self._on_speech_start(ev)
            else:
                await self._on_speech_end(ev)
        if self._encoder is not None:
            await self._pump_encoder()

    async def _pump_encoder(self, upto: int | None = None) -> None:
        assert self._encoder is not None
        samples, self._encoded_upto = self._history.slice(self._encoded_upto, upto)
        await self._encoder.push(samples)

    async def _on_speech_start(self, ev: SpeechStart) -> None:
        self._outbox.put_event(SpeechStartedEvent(ev.audio_start_ms, ev.decided_at_ms))
        assert self.settings is not None and self.info is not None
        if self.settings.barge_in:
            self._interrupt("barge_in")
        self._encoder = self.deps.codec.encoder(self.info)
        self._encoded_upto = self._history.index_at_ms(ev.audio_start_ms)
        await self._pump_encoder()

    def _count_turn(self) -> None:
        now = self._loop.time()
        while self._turn_times and self._turn_times[0] <= now - 60.0:
            self._turn_times.popleft()
        if len(self._turn_times) >= self.cfg.max_turns_per_minute:
            raise CallError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"more than {self.cfg.max_turns_per_minute} turns in one minute on this call; "
                "leave each reply time to play (or check the VAD settings) and start a new call",
            )
        self._turn_times.append(now)

    def _check_key(self) -> None:
        entry = current_principal().entry
        if self.deps.key_current is not None and entry is not None and not self.deps.key_current(entry):
            raise CallError(grpc.StatusCode.UNAUTHENTICATED, REVOKED_MESSAGE)

    async def _on_speech_end(self, ev: SpeechEnd) -> None:
        t_decided = time.perf_counter()
        assert self._encoder is not None and self.settings is not None
        self._check_key()
        self._count_turn()
        await self._pump_encoder(self._history.index_at_ms(ev.decided_at_ms))
        encoder, self._encoder = self._encoder, None
        self._outbox.put_event(SpeechStoppedEvent(ev.audio_end_ms, ev.decided_at_ms))
        turn = Turn(
            id=uuid.uuid4().hex,
            speech=ev,
            t_decided=t_decided,
            voice=self.voice,
            reply=Reply(out_rate=self.settings.output_format.sample_rate_hz),
            prev=self._last_turn,
        )
        turn.codes_task = self._spawn(self._flush_codes(turn, encoder), f"turn-{turn.id[:8]}-encode")
        turn.task = self._spawn(self._run_turn(turn), f"turn-{turn.id[:8]}")
        self._turns = [t for t in self._turns if t.task is not None and not t.task.done()]
        self._turns.append(turn)
        self._last_turn = turn

    async def _end_of_input(self) -> None:
        ev = self._segmenter.force_end() if self.settings is not None else None
        if ev is not None:
            await self._on_speech_end(ev)

    async def _on_control(self, msg: ControlInput) -> None:
        if msg.type is ControlType.COMMIT_TURN:
            ev = self._segmenter.force_end()
            if ev is None:
                self._error("TURN_TOO_SHORT", "COMMIT_TURN but no speech was detected since the last turn; nothing to answer")
                metrics.TURNS.labels("too_short").inc()
            else:
                await self._on_speech_end(ev)
        elif msg.type is ControlType.INTERRUPT:
            self._interrupt("control")  # nothing playing: nothing to do
        elif msg.type is ControlType.SET_VOICE:
            try:
                spec = get_voice(msg.voice)
            except UnknownVoiceError as exc:
                raise CallError(grpc.StatusCode.INVALID_ARGUMENT, f"SET_VOICE: {exc}") from exc
            self.voice = spec.id
            self._spawn(self._persist_voice(spec.id), "persist-voice")

    async def _persist_voice(self, voice: str) -> None:
        try:
            await self.deps.context.set_voice(self.session_id, self.tenant, voice)
        except (DownstreamUnavailable, DownstreamError, SessionNotFound) as exc:
            self._error("CONTEXT_NOT_SAVED", f"voice {voice} applies to this call but was not saved to the session: {exc}")

    def _interrupt(self, source: str) -> bool:
        """Stop every reply not yet fully played. Synchronous: no audio is written after this."""
        t0 = time.perf_counter()
        stopped = False
        for turn in self._turns:
            if turn.finished or turn.interrupted:
                continue
            turn.interrupted = source
            turn.interrupt_t = t0
            turn.reply.stopped = True
            if turn.pipeline is not None:
                turn.pipeline.cancel()
            if turn.playing_out is not None:
                turn.playing_out.set()
            stopped = True
        if stopped:
            metrics.INTERRUPTIONS.labels(source).inc()
        return stopped

    def _error(self, code: str, message: str, turn_id: str = "") -> None:
        metrics.INBAND_ERRORS.labels(code).inc()
        self._outbox.put_event(ErrorEvent(code, message, turn_id))

    # ------------------------------------------------------------------ writer

    async def _write_loop(self) -> None:
        while True:
            item = await self._outbox.get()
            if item is CLOSED:
                return
            if isinstance(item, _AudioItem):
                reply = item.turn.reply
                if reply.stopped:
                    continue
                await self._pace(reply)
                if reply.stopped:  # barge-in while waiting: this audio is never heard
                    continue
                seq = reply.seq
                reply.seq += 1
                await self._send_bounded(ResponseAudioEvent(item.turn.id, seq, item.data))
                now = time.perf_counter()
                reply.played_samples += item.n_samples
                if reply.first_write_t is None:
                    reply.first_write_t = now
                reply.last_write_t = now
            elif isinstance(item, Barrier):
                item.event.set()
            else:
                await self._send_bounded(item)

    async def _send_bounded(self, event: ServerEvent) -> None:
        """Write one message; WriterStalled when the caller takes nothing for write_stall_s.

        The write itself is not cancelled (that can leave the RPC unable to send its
        status): it stays pending until the RPC ends."""
        send = asyncio.ensure_future(self._send(event))
        done, _ = await asyncio.wait({send}, timeout=self.cfg.write_stall_s)
        if not done:
            self._stalled_send = send
            send.add_done_callback(lambda f: f.cancelled() or f.exception())  # ends with the RPC
            raise WriterStalled(
                f"the caller took no message for {self.cfg.write_stall_s:g} s (reply buffers are full)"
            )
        send.result()

    async def _pace(self, reply: Reply) -> None:
        """Keep the written audio at most `playback_lead_ms` ahead of real-time playback."""
        lead_s = self.cfg.playback_lead_ms / 1000.0
        if not lead_s or reply.first_write_t is None:
            return
        ahead = reply.played_samples / reply.out_rate - (time.perf_counter() - reply.first_write_t)
        if ahead > lead_s:
            await asyncio.sleep(ahead - lead_s)

    # ------------------------------------------------------------------ turns

    async def _flush_codes(self, turn: Turn, encoder: EncodeStream) -> np.ndarray:
        assert self.info is not None
        codes = await encoder.finish()
        turn.encode_done_t = time.perf_counter()
        metrics.STAGE.labels("encode_flush").observe((turn.encode_done_t - turn.t_decided))
        keep_ms = turn.speech.audio_end_ms - turn.speech.audio_start_ms + USER_TAIL_MS
        if not turn.speech.forced:
            return codes[:, : math.ceil(keep_ms * self.info.frame_rate_hz / 1000.0)]
        return codes

    async def _run_turn(self, turn: Turn) -> None:
        logctx.set_fields(turn_id=turn.id)  # every log line of this turn's tasks names it
        failure: BaseException | None = None
        try:
            prev, turn.prev = turn.prev, None  # do not keep a chain of old turns alive
            if prev is not None and prev.task is not None:
                await asyncio.wait({prev.task})
            self._outbox.put_event(ResponseStartedEvent(turn.id, turn.voice))
            if not turn.interrupted:
                turn.pipeline = asyncio.create_task(self._respond(turn), name=f"turn-{turn.id[:8]}-reply")
                await asyncio.wait({turn.pipeline})
                if not turn.pipeline.cancelled():
                    failure = turn.pipeline.exception()
            # Everything the reply queued has now been written, or dropped if it was stopped.
            await self._outbox.barrier()
            if failure is None:
                await self._play_out(turn)
            turn.finished = True
            await self._finish_turn(turn, failure)
            log.info(
                "turn finished",
                extra={"interrupted": bool(turn.interrupted), "played_ms": turn.reply.played_ms,
                       "failed": type(failure).__name__ if failure is not None else ""},
            )
        finally:
            if turn.pipeline is not None and not turn.pipeline.done():
                turn.pipeline.cancel()
                await asyncio.gather(turn.pipeline, return_exceptions=True)
            self._touch()

    async def _play_out(self, turn: Turn) -> None:
        """Wait until the caller has heard the end of the reply.

        Audio is written up to `playback_lead_ms` ahead of playback, so the last chunk is
        written while the caller still has that much to hear. Speaking over that tail is a
        barge-in like any other: it interrupts the reply (played_ms stays the audio written)."""
        reply = turn.reply
        if turn.interrupted or reply.first_write_t is None or self.settings is None or not self.settings.barge_in:
            return
        left = reply.played_samples / reply.out_rate - (time.perf_counter() - reply.first_write_t)
        if left <= 0:
            return
        turn.playing_out = asyncio.Event()
        try:
            await asyncio.wait_for(turn.playing_out.wait(), left)
        except TimeoutError:
            pass

    async def _finish_turn(self, turn: Turn, failure: BaseException | None) -> None:
        reply = turn.reply
        if turn.interrupted:
            stop_s = max(0.0, (reply.last_write_t or turn.interrupt_t) - turn.interrupt_t)
            metrics.BARGE_IN_STOP.observe(stop_s)
            metrics.TURNS.labels("interrupted").inc()
            self._outbox.put_event(ResponseInterruptedEvent(turn.id, reply.played_ms))
            await self._store(turn, self._latency(turn))
            return
        if failure is not None:
            code, outcome = self._classify(failure)
            metrics.TURNS.labels(outcome).inc()
            self._error(code, str(failure) or type(failure).__name__, turn.id)
            self._outbox.put_event(ResponseDoneEvent(turn.id, reply.played_ms, self._latency(turn), self.turns_in_context))
            return
        latency = self._latency(turn)
        if reply.first_write_t is not None:
            metrics.RESPONSE_LATENCY.observe(latency.response_latency_ms / 1000.0)
            metrics.VOICE_TO_VOICE.observe(latency.voice_to_voice_ms / 1000.0)
        else:
            self._error("EMPTY_REPLY", "the model produced no audio for this turn", turn.id)
        metrics.TURNS.labels("done").inc()
        await self._store(turn, latency)
        self._outbox.put_event(ResponseDoneEvent(turn.id, reply.played_ms, latency, self.turns_in_context))

    def _classify(self, exc: BaseException) -> tuple[str, str]:
        if isinstance(exc, TurnTooShort):
            return "TURN_TOO_SHORT", "too_short"
        if isinstance(exc, (DownstreamUnavailable, DownstreamError)) and exc.service == "codec":
            # A codec stream that fails mid-way often only reports INTERNAL; same outcome for the caller.
            return "CODEC_UNAVAILABLE", "failed"
        if self.deps.unavailable_errors and isinstance(exc, self.deps.unavailable_errors):
            return "S2S_UNAVAILABLE", "failed"
        return "GENERATION_FAILED", "failed"

    def _latency(self, turn: Turn) -> Latency:
        r = turn.reply
        response = _ms(turn.t_decided, r.first_write_t)
        hangover = turn.speech.decided_at_ms - turn.speech.audio_end_ms
        return Latency(
            response_latency_ms=response,
            voice_to_voice_ms=response + hangover if r.first_write_t is not None else 0.0,
            encode_flush_ms=_ms(turn.t_decided, turn.encode_done_t),
            context_fetch_ms=turn.context_fetch_ms,
            first_frame_ms=_ms(r.gen_sent_t, r.first_frame_t),
            first_decode_ms=_ms(r.first_decode_sent_t, r.first_audio_t),
        )

    async def _store(self, turn: Turn, latency: Latency) -> None:
        assert self.info is not None and turn.codes_task is not None
        try:
            user = await turn.codes_task
        except Exception:  # noqa: BLE001 - no user codes: nothing to store (the error was reported)
            return
        if user.shape[1] == 0:
            return
        reply = concat(turn.reply.generated, self.info.n_codebooks)
        if turn.interrupted:
            played_frames = math.ceil(turn.reply.played_ms * self.info.frame_rate_hz / 1000.0)
            reply = reply[:, :played_frames]
        record = TurnRecord(
            turn_id=turn.id,
            user_codes=user,
            reply_codes=reply,
            interrupted=bool(turn.interrupted),
            played_ms=turn.reply.played_ms,
            voice=turn.voice,
            latency=latency,
        )
        try:
            self.turns_in_context = await self.deps.context.append_turn(self.session_id, self.tenant, record)
        except (DownstreamUnavailable, DownstreamError, SessionNotFound) as exc:
            self._error("CONTEXT_NOT_SAVED", f"this turn was not saved to the session: {exc}", turn.id)

    async def _fetch_context(self, turn: Turn) -> tuple[np.ndarray, np.ndarray]:
        assert self.info is not None
        k = self.info.n_codebooks
        t0 = time.perf_counter()
        try:
            if self.cfg.context_turns == 0:
                return context_from_turns([], k)
            _, turns = await self.deps.context.get_context(self.session_id, self.tenant, self.cfg.context_turns)
            pairs = [
                (t.user_codes, t.reply_codes)
                for t in turns
                if t.user_codes.shape[0] == k and t.reply_codes.shape[0] == k
            ]
            return context_from_turns(pairs, k)
        except (DownstreamUnavailable, DownstreamError, SessionNotFound) as exc:
            self._error("CONTEXT_UNAVAILABLE", f"replying without the earlier turns: {exc}", turn.id)
            return context_from_turns([], k)
        finally:
            turn.context_fetch_ms = _ms(t0, time.perf_counter())
            metrics.STAGE.labels("context_fetch").observe(turn.context_fetch_ms / 1000.0)

    async def _respond(self, turn: Turn) -> None:
        """Generation -> Decode -> reply audio queued for the writer. Cancelled on interruption."""
        assert self.info is not None and self.settings is not None and turn.codes_task is not None
        info = self.info
        ctx_task = asyncio.create_task(self._fetch_context(turn), name=f"turn-{turn.id[:8]}-context")
        try:
            user = await asyncio.shield(turn.codes_task)
            ctx_codes, ctx_segments = await ctx_task
        finally:
            if not ctx_task.done():
                ctx_task.cancel()
                await asyncio.gather(ctx_task, return_exceptions=True)
        if user.shape[1] == 0:
            raise TurnTooShort("the turn produced no codec frames; speak a little longer")
        req = GenerationRequest(
            request_id=turn.id,
            user_codes=np.ascontiguousarray(user, dtype=np.int32),
            voice_index=get_voice(turn.voice).speaker_index,
            context_codes=ctx_codes,
            context_segments=ctx_segments,
            params=GenerationParams(max_frames=self.cfg.max_reply_frames(info.frame_rate_hz)),
        )
        reply = turn.reply
        out_fmt = self.settings.output_format
        resampler = audio_mod.StreamResampler(info.sample_rate_hz, out_fmt.sample_rate_hz)
        chunk = max(1, out_fmt.sample_rate_hz * REPLY_CHUNK_MS // 1000)
        decoder = self.deps.codec.decoder(info)
        feeder = asyncio.create_task(self._feed(turn, req, decoder), name=f"turn-{turn.id[:8]}-generate")
        try:
            while True:
                out = await decoder.read()
                if out is None:
                    break
                if out.samples.size and reply.first_audio_t is None:
                    reply.first_audio_t = time.perf_counter()
                    metrics.STAGE.labels("first_decode").observe(_ms(reply.first_decode_sent_t, reply.first_audio_t) / 1000)
                samples = resampler.process(out.samples, last=out.end_of_segment)
                for i in range(0, samples.size, chunk):
                    part = samples[i : i + chunk]
                    await self._outbox.put_audio(_AudioItem(turn, audio_mod.encode_samples(part, out_fmt), part.size))
                if out.end_of_segment:
                    break
            await feeder
            if reply.gen_error is not None:
                raise reply.gen_error
        finally:
            if not feeder.done():
                feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
            decoder.cancel()

    async def _feed(self, turn: Turn, req: GenerationRequest, decoder: DecodeStream) -> None:
        assert self.info is not None
        reply = turn.reply
        k = self.info.n_codebooks
        it = self.deps.generator.generate(req)
        reply.gen_sent_t = time.perf_counter()
        metrics.ACTIVE_GENERATIONS.inc()
        outcome = "failed"
        try:
            async for block in it:
                block = np.asarray(block)
                if block.ndim != 2 or block.shape[0] != k:
                    raise GenerationFailed(f"the model returned codes of shape {block.shape}; expected [{k}, n]")
                if block.shape[1] == 0:
                    continue
                if reply.first_frame_t is None:
                    reply.first_frame_t = time.perf_counter()
                    metrics.STAGE.labels("first_frame").observe(_ms(reply.gen_sent_t, reply.first_frame_t) / 1000)
                reply.generated.append(block.astype(np.int64))
                if reply.first_decode_sent_t is None:
                    reply.first_decode_sent_t = time.perf_counter()
                await decoder.write(block)
            outcome = "done"
            await decoder.end()
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except DownstreamUnavailable:
            raise  # the Decode stream failed: the reading side sees it too
        except Exception as exc:  # noqa: BLE001 - reported by the reading side
            # Generation failed: end the Decode stream so the audio made so far still plays.
            reply.gen_error = exc
            await decoder.end()
        finally:
            metrics.ACTIVE_GENERATIONS.dec()
            metrics.GENERATIONS.labels(outcome).inc()
            with contextlib.suppress(Exception):
                await close_iterator(it)
