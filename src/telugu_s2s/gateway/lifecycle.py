"""One Converse call from its first message to its status: handshake, tasks, limits, drain.

    SessionConfig -> Session (created or resumed in the context service) -> Call
    reader:  caller messages -> Call (audio, controls) until END_OF_INPUT or half-close
    writer:  PacedOutput, the only task that writes to the caller
    CallLifecycle supervises both: the idle timeout and the maximum call length; on a gateway
    drain (SIGTERM) it stops taking input, lets the replies in flight finish and ends the
    call with UNAVAILABLE so that the caller resumes the session elsewhere.

Whatever ends the call (the caller vanishing included), every task is cancelled and awaited.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import grpc

from telugu_s2s.gateway.buffers import OutboxOverflow
from telugu_s2s.gateway.call import Call
from telugu_s2s.gateway.config import Config
from telugu_s2s.gateway.errors import CallError, DownstreamError, DownstreamUnavailable, SessionNotFound
from telugu_s2s.gateway.events import (
    AudioInput,
    CallSettings,
    ClientInput,
    ControlInput,
    ControlType,
    ServerEvent,
    SessionStartedEvent,
)
from telugu_s2s.gateway.output import PacedOutput, WriterStalled
from telugu_s2s.gateway.session import CallDeps, Session

log = logging.getLogger(__name__)

DRAIN_MESSAGE = (
    "this gateway is shutting down; start a new call with session_id {session} to continue "
    "the conversation (its turns are kept)"
)


class CallLifecycle:
    """`await CallLifecycle(...).run()` runs one call to its end; it raises CallError for a call that
    must end with an error status."""

    def __init__(
        self,
        cfg: Config,
        deps: CallDeps,
        tenant: str,
        recv: Callable[[], Awaitable[ClientInput | None]],
        send: Callable[[ServerEvent], Awaitable[None]],
    ) -> None:
        self.cfg, self.deps, self.tenant, self._recv = cfg, deps, tenant, recv
        self._output = PacedOutput(send, cfg.write_stall_s, cfg.playback_lead_ms)
        self._loop = asyncio.get_running_loop()
        self._t_start = self._last_activity = self._loop.time()
        self._call: Call | None = None  # once the handshake is done
        self._session_id = ""

    def _touch(self) -> None:
        self._last_activity = self._loop.time()

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
        if self._call is not None and self._call.pending():
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
        if self.deps.draining.is_set():
            raise CallError(grpc.StatusCode.UNAVAILABLE, "this gateway is shutting down; retry the call")
        reader = asyncio.create_task(self._read_loop(), name="call-reader")
        writer = self._output.start()
        drain = asyncio.create_task(self.deps.draining.wait(), name="call-drain")
        drained = False
        try:
            while True:
                done, _ = await asyncio.wait(
                    {reader, writer, drain}, timeout=self._check_deadlines(), return_when=asyncio.FIRST_COMPLETED
                )
                if writer in done:
                    writer.result()
                    return
                if reader in done:
                    reader.result()
                    break
                if drain in done:  # take no more input; the replies in flight finish below
                    drained = True
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
                    break
            # Input ended (END_OF_INPUT or half-close): finish the replies, then end with OK.
            while self._call is not None and (pending := self._call.pending()):
                done, _ = await asyncio.wait(
                    {*pending, writer}, timeout=self._check_deadlines(), return_when=asyncio.FIRST_COMPLETED
                )
                if writer in done:
                    writer.result()
                    return
            await self._output.finish()
            if drained:
                log.info("call drained", extra={"session_id": self._session_id})
                raise CallError(grpc.StatusCode.UNAVAILABLE, DRAIN_MESSAGE.format(session=self._session_id or "(none)"))
        except (OutboxOverflow, WriterStalled) as exc:
            raise CallError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{exc}; read the response stream") from exc
        finally:
            await self._shutdown(reader, drain)

    async def _shutdown(self, *tasks: asyncio.Task) -> None:
        for task in tasks:
            task.cancel()
        # Wait for every task, even if this coroutine is itself being cancelled.
        gathered = asyncio.gather(
            *tasks, self._call.close() if self._call else asyncio.sleep(0), return_exceptions=True
        )
        try:
            await asyncio.shield(gathered)
        except asyncio.CancelledError:
            await gathered
            raise
        finally:
            await self._output.stop()

    async def _read_loop(self) -> None:
        first = await self._recv()
        self._touch()
        if first is None:
            raise CallError(
                grpc.StatusCode.INVALID_ARGUMENT, "the call ended before its SessionConfig; send a SessionConfig first"
            )
        if not isinstance(first, CallSettings):
            raise CallError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "the first message of a call must be a SessionConfig; audio and controls may follow it",
            )
        call = self._call = await self._start(first)
        while True:
            msg = await self._recv()
            self._touch()
            if msg is None or (isinstance(msg, ControlInput) and msg.type is ControlType.END_OF_INPUT):
                await call.end_of_input()
                return
            if isinstance(msg, AudioInput):
                await call.on_audio(msg.data)
            elif isinstance(msg, ControlInput):
                await call.on_control(msg)
            else:
                raise CallError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "SessionConfig may be sent only once, as the first message; use Control SET_VOICE to change the voice",
                )

    async def _start(self, settings: CallSettings) -> Call:
        """The handshake: downstreams ready, the session created or resumed, SessionStarted."""
        self.deps.turn.check(settings)
        try:
            info = self.deps.monitor.require_ready()
        except DownstreamUnavailable as exc:
            raise CallError(grpc.StatusCode.UNAVAILABLE, f"{exc}; retry shortly") from exc
        ctx = self.deps.context
        resumed = bool(settings.session_id)
        try:
            if resumed:
                rec = await ctx.get_session(settings.session_id, self.tenant)
                if settings.voice and settings.voice != rec.voice:
                    rec = await ctx.set_voice(rec.session_id, self.tenant, settings.voice)
                voice = settings.voice or rec.voice or self.cfg.default_voice
            else:
                voice = settings.voice or self.cfg.default_voice
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
        self._session_id = rec.session_id
        session = Session(rec.session_id, self.tenant, settings, info)
        log.info(
            "call started",
            extra={"session_id": rec.session_id, "resumed": resumed, "voice": voice, "turns": rec.turn_count},
        )
        self._output.put_event(
            SessionStartedEvent(
                session_id=rec.session_id,
                resumed=resumed,
                turns_in_context=rec.turn_count,
                voice=voice,
                input_format=settings.input_format,
                output_format=settings.output_format,
                untrained_model=info.random_weights,
            )
        )
        return Call(
            self.cfg,
            self.deps,
            session,
            self._output,
            voice=voice,
            turns_in_context=rec.turn_count,
            on_turn_done=self._touch,
        )
