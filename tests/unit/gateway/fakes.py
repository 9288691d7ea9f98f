"""In-process fakes of the gateway's downstreams, each able to fail on demand.

- FakeCodec: a real gRPC Codec server (port 0) with a deterministic toy codec.
- FakeContext: a real gRPC ContextStore server (port 0), in memory.
- FakeGenerator: implements the gateway's S2SGenerator protocol (no Triton).

All use grpc.aio servers with the standard health service, so the gateway's
readiness checks run against them unchanged.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from telugu_s2s.common import codes as codes_mod
from telugu_s2s.s2s.protocol import GenerationRequest
from telugu_s2s.v1 import codec_pb2, codec_pb2_grpc, context_pb2, context_pb2_grpc


async def _serve(add, servicer) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    server = grpc.aio.server()
    add(servicer, server)
    hs = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await hs.set("", health_pb2.HealthCheckResponse.SERVING)
    return server, port, hs


class _Base:
    server: grpc.aio.Server
    port: int
    _health: health.aio.HealthServicer

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def set_healthy(self, ok: bool) -> None:
        await self._health.set(
            "", health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
        )

    async def stop(self) -> None:
        await self.server.stop(0)


# ---------------------------------------------------------------------- codec


class FakeCodec(codec_pb2_grpc.CodecServicer, _Base):
    """Toy codec: one frame = `samples_per_frame` samples.

    Encode: codebook 0 = frame RMS / 16 (clipped), codebook q>0 = (frame index + q) mod size.
    Decode: each frame becomes a sine burst whose amplitude is codebook 0 x 16.
    Deterministic, chunking-independent, and speech vs silence gives different codes.
    """

    def __init__(self, sample_rate: int = 16000, frame_rate: float = 50.0, n_codebooks: int = 2, codebook_size: int = 1024):
        self.sample_rate = sample_rate
        self.frame_rate = frame_rate
        self.spf = int(round(sample_rate / frame_rate))
        self.n_codebooks = n_codebooks
        self.codebook_size = codebook_size
        # Failure switches.
        self.fail_encode = False  # Encode aborts UNAVAILABLE
        self.fail_decode = False  # Decode aborts UNAVAILABLE
        self.fail_info = False
        # Observations.
        self.encode_streams = 0
        self.decode_streams = 0
        self.decode_cancelled = 0  # Decode streams that ended without end_of_segment
        self.encoded_samples: list[int] = []  # samples received per Encode segment
        self.encode_messages: list[int] = []  # samples in each Encode message, in arrival order

    @classmethod
    async def start(cls, **kw) -> "FakeCodec":
        self = cls(**kw)
        self.server, self.port, self._health = await _serve(codec_pb2_grpc.add_CodecServicer_to_server, self)
        return self

    def encode_frames(self, samples: np.ndarray) -> np.ndarray:
        n = len(samples) // self.spf
        frames = samples[: n * self.spf].astype(np.float64).reshape(n, self.spf)
        rms = np.sqrt((frames**2).mean(axis=1)) if n else np.zeros(0)
        out = np.zeros((self.n_codebooks, n), dtype=np.int64)
        out[0] = np.clip(rms / 16, 0, self.codebook_size - 1).astype(np.int64)
        return out

    def decode_frames(self, codes: np.ndarray, first_frame: int) -> np.ndarray:
        n = codes.shape[1]
        t = (np.arange(n * self.spf) + first_frame * self.spf) / self.sample_rate
        amp = np.repeat(codes[0].astype(np.float64) * 16, self.spf)
        return np.clip(amp * np.sin(2 * np.pi * 220 * t), -32768, 32767).astype(np.int16)

    async def Info(self, request, context):
        if self.fail_info:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "fake codec: Info failing on demand")
        return codec_pb2.CodecInfo(
            sample_rate_hz=self.sample_rate,
            frame_rate_hz=self.frame_rate,
            samples_per_frame=self.spf,
            n_codebooks=self.n_codebooks,
            codebook_size=self.codebook_size,
            bandwidth_kbps=1.5,
            weights="fake-toy-codec",
            random_weights=False,
        )

    async def Encode(self, request_iterator, context):
        self.encode_streams += 1
        if self.fail_encode:
            await request_iterator.__anext__()  # aborting before any read surfaces as INTERNAL
            await context.abort(grpc.StatusCode.UNAVAILABLE, "fake codec: Encode failing on demand")
        buf = np.zeros(0, dtype=np.int16)
        frame = 0
        total = 0

        def codes_msg(samples: np.ndarray, end: bool) -> codec_pb2.CodeFrames:
            codes = self.encode_frames(samples)
            for q in range(1, self.n_codebooks):
                codes[q] = (np.arange(frame, frame + codes.shape[1]) + q) % self.codebook_size
            return codec_pb2.CodeFrames(codes=codes_mod.to_proto(codes), first_frame=frame, end_of_segment=end)

        async for req in request_iterator:
            if req.pcm16 and req.sample_rate_hz != self.sample_rate:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"fake codec wants {self.sample_rate} Hz")
            pcm = np.frombuffer(req.pcm16, dtype="<i2").astype(np.int16)
            self.encode_messages.append(len(pcm))
            total += len(pcm)
            buf = np.concatenate([buf, pcm])
            if req.end_of_segment:
                pad = (-len(buf)) % self.spf
                buf = np.concatenate([buf, np.zeros(pad, np.int16)])
            n = len(buf) // self.spf
            if n or req.end_of_segment:
                msg = codes_msg(buf[: n * self.spf], req.end_of_segment)
                buf = buf[n * self.spf :]
                frame += n
                yield msg
            if req.end_of_segment:
                self.encoded_samples.append(total)
                buf, frame, total = np.zeros(0, np.int16), 0, 0

    async def Decode(self, request_iterator, context):
        # Read/write API (not an async generator) so a cancelled stream is observed at once.
        self.decode_streams += 1
        if self.fail_decode:
            await context.read()
            await context.abort(grpc.StatusCode.UNAVAILABLE, "fake codec: Decode failing on demand")
        sample = 0
        frame = 0
        ended = False
        try:
            while True:
                req = await context.read()
                if req is grpc.aio.EOF:
                    # A client cancel shows up here as EOF without a last end_of_segment.
                    if not ended:
                        self.decode_cancelled += 1
                    return
                ended = req.end_of_segment
                codes = codes_mod.from_proto(req.codes)
                pcm = self.decode_frames(codes, frame) if codes.shape[1] else np.zeros(0, np.int16)
                frame += codes.shape[1]
                await context.write(
                    codec_pb2.AudioOut(
                        pcm16=pcm.astype("<i2").tobytes(),
                        sample_rate_hz=self.sample_rate,
                        first_sample=sample,
                        end_of_segment=req.end_of_segment,
                    )
                )
                sample += len(pcm)
                if req.end_of_segment:
                    sample = frame = 0
        except asyncio.CancelledError:
            self.decode_cancelled += 1
            raise


# ---------------------------------------------------------------------- context


@dataclass
class _Session:
    record: context_pb2.SessionRecord
    turns: list[context_pb2.Turn] = field(default_factory=list)


class FakeContext(context_pb2_grpc.ContextStoreServicer, _Base):
    def __init__(self, max_turns: int = 10) -> None:
        self.max_turns = max_turns
        self.sessions: dict[tuple[str, str], _Session] = {}
        self.unavailable = False  # every RPC aborts UNAVAILABLE
        self.fail_append = False  # AppendTurn aborts UNAVAILABLE
        self.fail_get_context = False
        self.calls: list[tuple[str, str]] = []  # (method, tenant)

    @classmethod
    async def start(cls, **kw) -> "FakeContext":
        self = cls(**kw)
        self.server, self.port, self._health = await _serve(context_pb2_grpc.add_ContextStoreServicer_to_server, self)
        return self

    async def _enter(self, context, method: str, tenant: str) -> None:
        self.calls.append((method, tenant))
        if self.unavailable:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "fake context: store unavailable on demand")

    async def _get(self, ref, context) -> _Session:
        s = self.sessions.get((ref.tenant, ref.session_id))
        if s is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"session {ref.session_id} not found")
        s.record.updated_at.GetCurrentTime()
        return s

    def turns_of(self, session_id: str, tenant: str = "") -> list[context_pb2.Turn]:
        return list(self.sessions[(tenant, session_id)].turns)

    async def CreateSession(self, request, context):
        await self._enter(context, "CreateSession", request.tenant)
        rec = context_pb2.SessionRecord(session_id=secrets.token_hex(16), tenant=request.tenant, voice=request.voice)
        rec.created_at.GetCurrentTime()
        rec.updated_at.GetCurrentTime()
        self.sessions[(request.tenant, rec.session_id)] = _Session(rec)
        return rec

    async def GetSession(self, request, context):
        await self._enter(context, "GetSession", request.tenant)
        return (await self._get(request, context)).record

    async def DeleteSession(self, request, context):
        await self._enter(context, "DeleteSession", request.tenant)
        from telugu_s2s.v1 import common_pb2

        deleted = self.sessions.pop((request.tenant, request.session_id), None) is not None
        return common_pb2.DeleteSessionResponse(deleted=deleted)

    async def SetVoice(self, request, context):
        await self._enter(context, "SetVoice", request.session.tenant)
        s = await self._get(request.session, context)
        s.record.voice = request.voice
        return s.record

    async def AppendTurn(self, request, context):
        await self._enter(context, "AppendTurn", request.session.tenant)
        if self.fail_append:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "fake context: AppendTurn failing on demand")
        s = await self._get(request.session, context)
        turn = context_pb2.Turn()
        turn.CopyFrom(request.turn)
        turn.created_at.GetCurrentTime()
        s.turns = (s.turns + [turn])[-self.max_turns :]
        s.record.turn_count = len(s.turns)
        s.record.total_turns += 1
        return context_pb2.AppendTurnResponse(turn_count=len(s.turns), turn_index=s.record.total_turns)

    async def GetContext(self, request, context):
        await self._enter(context, "GetContext", request.session.tenant)
        if self.fail_get_context:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "fake context: GetContext failing on demand")
        s = await self._get(request.session, context)
        n = request.max_turns or self.max_turns
        return context_pb2.ContextResponse(session=s.record, turns=s.turns[-n:])


# ---------------------------------------------------------------------- generator


class FakeS2SUnavailable(RuntimeError):
    """Stands in for telugu_s2s.s2s.client.S2SUnavailable."""


class FakeGenerator:
    """Implements the gateway's S2SGenerator protocol.

    Each reply is `reply_frames` frames in blocks of `frames_per_block`; codebook 0
    is a constant loud code (so decoded audio is non-silent), codebook q>0 counts
    frames. `block_delay_s` paces the blocks; `hold` (an Event, if set) makes
    generation wait after the first block until released, for barge-in tests.
    """

    def __init__(self, n_codebooks: int = 2, reply_frames: int = 20, frames_per_block: int = 2) -> None:
        self.n_codebooks = n_codebooks
        self.reply_frames = reply_frames
        self.frames_per_block = frames_per_block
        self.block_delay_s = 0.0
        self.hold: asyncio.Event | None = None
        self.is_ready = True
        self.fail: BaseException | None = None  # raised when generation starts
        self.fail_after_blocks: int | None = None
        self.requests: list[GenerationRequest] = []
        self.started = asyncio.Event()
        self.active = 0
        self.cancelled = 0
        self.completed = 0
        self.closed = False

    async def ready(self) -> bool:
        return self.is_ready

    async def close(self) -> None:
        self.closed = True

    async def generate(self, req: GenerationRequest):
        self.requests.append(req)
        self.active += 1
        self.started.set()
        try:
            if self.fail is not None:
                raise self.fail
            sent = 0
            blocks = 0
            while sent < self.reply_frames:
                if self.fail_after_blocks is not None and blocks >= self.fail_after_blocks:
                    raise FakeS2SUnavailable("fake generator: failing mid-reply on demand")
                n = min(self.frames_per_block, self.reply_frames - sent)
                block = np.zeros((self.n_codebooks, n), dtype=np.int32)
                block[0] = 600
                for q in range(1, self.n_codebooks):
                    block[q] = np.arange(sent, sent + n) % 1024
                if self.block_delay_s:
                    await asyncio.sleep(self.block_delay_s)
                yield block
                sent += n
                blocks += 1
                if self.hold is not None and blocks == 1:
                    await self.hold.wait()
            self.completed += 1
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled += 1
            raise
        finally:
            self.active -= 1


async def wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    """Wait until predicate() is true (a liveness check, not a speed check)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
