"""The turn state machine of one call, built once the handshake has settled its session.

    listening --speech start--> user speaking --speech end--> responding --reply heard--> listening

Audio goes through the InputPipeline (gateway.input), which reports speech starts and turns
here. Each turn runs as one task: encode flush + context fetch (concurrently) -> the
ReplyPipeline (gateway.reply: generate -> decode -> resample) into the PacedOutput
(gateway.output) -> ResponseDone / ResponseInterrupted -> AppendTurn (gateway.memory). Turns run one after
another: a turn's reply starts after the previous turn was stored. Speech over a reply (or
INTERRUPT) stops it at once: no audio of it is written after that.

Preemptive replies: when the end-of-turn model leans to "finished" in a silence (LikelyEnd)
and no reply is in flight, the turn's reply is started from the codes streamed so far, held
behind the turn's gate. If the turn then ends where it was started, that reply is the turn's
(only its audio waits for the decision); if the caller goes on, it is cancelled unheard.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable

import grpc
import numpy as np

from telugu_s2s.common.codes import concat
from telugu_s2s.common.voices import UnknownVoiceError, get_voice
from telugu_s2s.gateway import metrics
from telugu_s2s.gateway.auth import current_principal
from telugu_s2s.gateway.codec_client import EncodeStream
from telugu_s2s.gateway.config import REPLY_FIRST_BLOCK_FRAMES, Config
from telugu_s2s.gateway.context_client import Latency, TurnRecord
from telugu_s2s.gateway.errors import CallError, DownstreamError, DownstreamUnavailable, SessionNotFound
from telugu_s2s.gateway.events import (
    ControlInput,
    ControlType,
    ErrorEvent,
    ResponseDoneEvent,
    ResponseInterruptedEvent,
    ResponseStartedEvent,
    SpeechStartedEvent,
    SpeechStoppedEvent,
)
from telugu_s2s.gateway.input import InputPipeline
from telugu_s2s.gateway.memory import TurnMemory
from telugu_s2s.gateway.output import PacedOutput, Reply
from telugu_s2s.gateway.reply import ReplyPipeline
from telugu_s2s.gateway.session import CallDeps, Session
from telugu_s2s.gateway.turn import Turn, TurnTooShort, classify
from telugu_s2s.gateway.vad import LikelyEnd, SpeechEnd, SpeechStart
from telugu_s2s.s2s.protocol import GenerationParams, GenerationRequest
from telugu_s2s.security import logctx

log = logging.getLogger(__name__)

# User codes keep this much audio after the last voiced frame (the rest of the hangover is silence).
USER_TAIL_MS = 100
# A held (preemptive) reply decodes this much before its turn is decided; the rest waits, so a
# dropped one costs little, and once it plays it streams like any other.
HELD_REPLY_MS = 400

REVOKED_MESSAGE = "the API key of this call was revoked or changed; start a new call with a valid key"


class Call:
    def __init__(
        self,
        cfg: Config,
        deps: CallDeps,
        session: Session,
        output: PacedOutput,
        *,
        voice: str,
        turns_in_context: int,
        on_turn_done: Callable[[], None],
    ) -> None:
        self.cfg, self.deps, self.session, self.output = cfg, deps, session, output
        self.voice = voice
        self.turns_in_context = turns_in_context
        self._on_turn_done = on_turn_done
        self.input = InputPipeline(
            session.settings, session.info, deps.codec, self, deps.turn, push_ms=cfg.encode_push_ms
        )
        self.memory = TurnMemory(
            deps.context, session.id, session.tenant, session.info.n_codebooks, cfg.context_turns, self._error
        )
        self._tasks: set[asyncio.Task] = set()
        self._turns: list[Turn] = []
        self._last_turn: Turn | None = None
        self._early: Turn | None = None  # a reply prepared ahead of the turn's end (held)
        self._gated: dict[str, Turn] = {}  # turns whose reply is still held, by id
        self._turn_times: deque[float] = deque()

    # ------------------------------------------------------------------ lifecycle

    def pending(self) -> set[asyncio.Task]:
        """The turn tasks still running."""
        return {t.task for t in self._turns if t.task is not None and not t.task.done()}

    async def close(self) -> None:
        """Stop every reply, cancel every task of the call and wait for them."""
        for turn in self._turns:
            turn.reply.stopped = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await self.input.close()

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ caller input

    async def on_audio(self, data: bytes) -> None:
        await self.input.feed(data)

    async def end_of_input(self) -> None:
        await self.input.force_end()

    async def on_control(self, msg: ControlInput) -> None:
        if msg.type is ControlType.COMMIT_TURN:
            if not await self.input.force_end():
                self._error(
                    "TURN_TOO_SHORT", "COMMIT_TURN but no speech was detected since the last turn; nothing to answer"
                )
                metrics.TURNS.labels("too_short").inc()
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
            await self.deps.context.set_voice(self.session.id, self.session.tenant, voice)
        except (DownstreamUnavailable, DownstreamError, SessionNotFound) as exc:
            self._error(
                "CONTEXT_NOT_SAVED", f"voice {voice} applies to this call but was not saved to the session: {exc}"
            )

    # ------------------------------------------------------------------ InputHooks

    def on_speech_start(self, ev: SpeechStart) -> None:
        self.output.put_event(SpeechStartedEvent(ev.audio_start_ms, ev.decided_at_ms))
        if self.session.settings.barge_in:
            self._interrupt("barge_in")

    def admit_turn(self) -> None:
        """A revoked key, or too many turns a minute, ends the call."""
        entry = current_principal().entry
        if self.deps.key_current is not None and entry is not None and not self.deps.key_current(entry):
            raise CallError(grpc.StatusCode.UNAUTHENTICATED, REVOKED_MESSAGE)
        now = time.monotonic()
        while self._turn_times and self._turn_times[0] <= now - 60.0:
            self._turn_times.popleft()
        if len(self._turn_times) >= self.cfg.max_turns_per_minute:
            raise CallError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"more than {self.cfg.max_turns_per_minute} turns in one minute on this call; "
                "leave each reply time to play (or check the VAD settings) and start a new call",
            )
        self._turn_times.append(now)

    def on_turn(self, ev: SpeechEnd, encoder: EncodeStream, t_decided: float) -> None:
        self.output.put_event(SpeechStoppedEvent(ev.audio_end_ms, ev.decided_at_ms, ev.reason.value))
        metrics.TURN_ENDS.labels(ev.reason.value).inc()
        turn, self._early = self._early, None
        if turn is not None and self._fits(turn, ev):
            metrics.PREEMPTIVE.labels("used").inc()
            turn.speech, turn.t_decided = ev, t_decided
            self._spawn(self._close_after(turn, encoder), "encode-close")
        else:
            if turn is not None:
                self._drop(turn)
            turn = self._new_turn(ev, t_decided)
            turn.codes_task = self._spawn(self._flush_codes(turn, encoder), f"turn-{turn.id[:8]}-encode")
        turn.prev = self._last_turn
        turn.task = self._spawn(self._run_turn(turn), f"turn-{turn.id[:8]}")
        self._turns = [t for t in self._turns if t.task is not None and not t.task.done()]
        self._turns.append(turn)
        self._last_turn = turn

    def on_likely_end(self, ev: LikelyEnd, encoder: EncodeStream) -> None:
        """Start this turn's reply now, held until the turn ends (one at a time; not while an
        earlier reply is still in flight, since a reply starts after the previous turn is stored)."""
        if self._early is not None or self.pending():
            return
        speech = SpeechEnd(ev.audio_start_ms, ev.audio_end_ms, ev.decided_at_ms)
        turn = self._new_turn(speech, time.perf_counter())
        turn.gate = asyncio.Event()
        self._gated[turn.id] = turn
        turn.codes_task = self._spawn(self._early_codes(turn, encoder), f"turn-{turn.id[:8]}-early-encode")
        turn.pipeline = self._spawn(self._respond(turn), f"turn-{turn.id[:8]}-early-reply")
        self._early = turn

    def on_resumed(self) -> None:
        turn, self._early = self._early, None
        if turn is not None:
            self._drop(turn)

    def _fits(self, early: Turn, ev: SpeechEnd) -> bool:
        """The held reply answers this turn: same audio, same voice, ended by silence."""
        same = (early.speech.audio_start_ms, early.speech.audio_end_ms) == (ev.audio_start_ms, ev.audio_end_ms)
        return same and not ev.forced and early.voice == self.voice

    def _drop(self, turn: Turn) -> None:
        """Cancel a held reply the caller never hears."""
        metrics.PREEMPTIVE.labels("dropped").inc()
        self._gated.pop(turn.id, None)  # its errors were about a turn the caller never had
        turn.reply.stopped = True
        for task in (turn.pipeline, turn.codes_task):
            if task is not None:
                task.add_done_callback(_consume)
                task.cancel()

    def _open_gate(self, turn: Turn) -> None:
        assert turn.gate is not None
        self._gated.pop(turn.id, None)
        turn.gate.set()
        for code, message in turn.held_errors:
            self._error(code, message, turn.id)
        turn.held_errors.clear()

    def _new_turn(self, ev: SpeechEnd, t_decided: float) -> Turn:
        return Turn(
            id=uuid.uuid4().hex,
            speech=ev,
            t_decided=t_decided,
            voice=self.voice,
            reply=Reply(out_rate=self.session.settings.output_format.sample_rate_hz),
            prev=None,
        )

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
        held = self._gated.get(turn_id) if turn_id else None
        if held is not None:
            held.held_errors.append((code, message))
            return
        metrics.INBAND_ERRORS.labels(code).inc()
        self.output.put_event(ErrorEvent(code, message, turn_id))

    # ------------------------------------------------------------------ turns

    def _kept_frames(self, speech: SpeechEnd) -> int:
        """User code frames kept of a turn ended by silence: up to USER_TAIL_MS after its last voiced frame."""
        keep_ms = speech.audio_end_ms - speech.audio_start_ms + USER_TAIL_MS
        return math.ceil(keep_ms * self.session.info.frame_rate_hz / 1000.0)

    async def _flush_codes(self, turn: Turn, encoder: EncodeStream) -> np.ndarray:
        codes = await encoder.finish()
        turn.encode_done_t = time.perf_counter()
        metrics.STAGE.labels("encode_flush").observe(turn.encode_done_t - turn.t_decided)
        if not turn.speech.forced:
            return codes[:, : self._kept_frames(turn.speech)]
        return codes

    async def _early_codes(self, turn: Turn, encoder: EncodeStream) -> np.ndarray:
        """The same codes `_flush_codes` keeps, read from the running stream (the codec is causal)."""
        codes = await encoder.prefix(self._kept_frames(turn.speech))
        turn.encode_done_t = time.perf_counter()
        return codes

    async def _close_after(self, turn: Turn, encoder: EncodeStream) -> None:
        """A held reply was taken up: its codes came from the running Encode stream; once they
        are in, note how long after the decision that was (0 when before) and close the stream."""
        assert turn.codes_task is not None
        await asyncio.gather(turn.codes_task, return_exceptions=True)
        if turn.encode_done_t is not None:
            metrics.STAGE.labels("encode_flush").observe(max(0.0, turn.encode_done_t - turn.t_decided))
        await encoder.cancel()

    async def _run_turn(self, turn: Turn) -> None:
        logctx.set_fields(turn_id=turn.id)  # every log line of this turn's tasks names it
        failure: BaseException | None = None
        try:
            prev, turn.prev = turn.prev, None  # do not keep a chain of old turns alive
            if prev is not None and prev.task is not None:
                await asyncio.wait({prev.task})
            self.output.put_event(ResponseStartedEvent(turn.id, turn.voice))
            if not turn.interrupted:
                if turn.pipeline is None:
                    turn.pipeline = asyncio.create_task(self._respond(turn), name=f"turn-{turn.id[:8]}-reply")
                if turn.gate is not None:  # a preemptive reply: out it goes now, after ResponseStarted
                    self._open_gate(turn)
                await asyncio.wait({turn.pipeline})
                if not turn.pipeline.cancelled():
                    failure = turn.pipeline.exception()
            # Everything the reply queued has now been written, or dropped if it was stopped.
            await self.output.barrier()
            if failure is None:
                await self._play_out(turn)
            turn.finished = True
            await self._finish_turn(turn, failure)
            log.info(
                "turn finished",
                extra={
                    "interrupted": bool(turn.interrupted),
                    "played_ms": turn.played_ms(),
                    "failed": type(failure).__name__ if failure is not None else "",
                },
            )
        finally:
            self._gated.pop(turn.id, None)  # interrupted before its held reply went out
            if turn.pipeline is not None and not turn.pipeline.done():
                turn.pipeline.cancel()
                await asyncio.gather(turn.pipeline, return_exceptions=True)
            self._on_turn_done()

    async def _respond(self, turn: Turn) -> None:
        """Codes and context -> the reply pipeline. Cancelled on interruption."""
        assert turn.codes_task is not None
        info = self.session.info
        ctx_task = asyncio.create_task(self.memory.fetch(turn.id), name=f"turn-{turn.id[:8]}-context")
        try:
            user = await asyncio.shield(turn.codes_task)
            (ctx_codes, ctx_segments), turn.context_fetch_ms = await ctx_task
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
            params=GenerationParams(
                max_frames=self.cfg.max_reply_frames(info.frame_rate_hz),
                frames_per_response=REPLY_FIRST_BLOCK_FRAMES,
                max_frames_per_response=self.cfg.reply_block_max_frames,
            ),
        )

        async def emit(data: bytes, n_samples: int) -> None:
            if turn.gate is not None:
                await turn.gate.wait()  # held until the turn is decided
            await self.output.put_audio(turn.id, turn.reply, data, n_samples)

        pipeline = ReplyPipeline(self.deps.codec, self.deps.generator, info, self.session.settings.output_format, emit)
        held = math.ceil(HELD_REPLY_MS * info.frame_rate_hz / 1000.0)
        await pipeline.run(req, turn.reply, turn.gate, held)

    async def _play_out(self, turn: Turn) -> None:
        """Wait until the caller has heard the end of the reply.

        Audio is written up to `playback_lead_ms` ahead of playback, so the last chunk is
        written while the caller still has that much to hear. Speaking over that tail is a
        barge-in like any other: it interrupts the reply (played_ms is what was heard by then)."""
        if turn.interrupted or turn.reply.first_write_t is None or not self.session.settings.barge_in:
            return
        left = turn.reply.ahead_s()
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
            self.output.put_event(ResponseInterruptedEvent(turn.id, turn.played_ms()))
            await self._store(turn, turn.latency())
            return
        if failure is not None:
            code, outcome = classify(failure, self.deps.unavailable_errors)
            metrics.TURNS.labels(outcome).inc()
            self._error(code, str(failure) or type(failure).__name__, turn.id)
            self.output.put_event(ResponseDoneEvent(turn.id, reply.sent_ms, turn.latency(), self.turns_in_context))
            return
        latency = turn.latency()
        if reply.first_write_t is not None:
            metrics.RESPONSE_LATENCY.observe(latency.response_latency_ms / 1000.0)
            metrics.VOICE_TO_VOICE.observe(latency.voice_to_voice_ms / 1000.0)
        else:
            self._error("EMPTY_REPLY", "the model produced no audio for this turn", turn.id)
        metrics.TURNS.labels("done").inc()
        await self._store(turn, latency)
        self.output.put_event(ResponseDoneEvent(turn.id, reply.sent_ms, latency, self.turns_in_context))

    async def _store(self, turn: Turn, latency: Latency) -> None:
        assert turn.codes_task is not None
        try:
            user = await turn.codes_task
        except Exception:  # noqa: BLE001 - no user codes: nothing to store (the error was reported)
            return
        if user.shape[1] == 0:
            return
        info = self.session.info
        reply = concat(turn.reply.generated, info.n_codebooks)
        if turn.interrupted:
            reply = reply[:, : math.ceil(turn.played_ms() * info.frame_rate_hz / 1000.0)]
        count = await self.memory.store(
            TurnRecord(
                turn_id=turn.id,
                user_codes=user,
                reply_codes=reply,
                interrupted=bool(turn.interrupted),
                played_ms=turn.played_ms(),
                voice=turn.voice,
                latency=latency,
            )
        )
        if count is not None:
            self.turns_in_context = count


def _consume(task: asyncio.Task) -> None:
    """Retrieve a dropped task's outcome (nobody awaits it)."""
    if not task.cancelled():
        task.exception()
