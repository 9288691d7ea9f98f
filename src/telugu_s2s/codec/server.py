"""Codec gRPC service: Encode / Decode streams and Info over a micro-batching engine.

pb2 messages stay in this module: requests are validated and converted to numpy here, the
sessions in `engine` work on numpy arrays only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import numpy as np

from telugu_s2s.codec.checkpoint import LoadedCodec
from telugu_s2s.codec.config import Config
from telugu_s2s.codec.engine import CodecEngine, DecodeSession, EncodeSession
from telugu_s2s.codec.metrics import CodecMetrics, default_metrics
from telugu_s2s.codec.streaming import StreamingCodec
from telugu_s2s.codec.weights import resolve
from telugu_s2s.common import codes as codes_lib
from telugu_s2s.common.audio import float_to_int16
from telugu_s2s.common.codec_info import CodecInfo
from telugu_s2s.common.refusal import refuse
from telugu_s2s.common.service import GrpcService, start_metrics_server
from telugu_s2s.security.tls import TlsGrpcService
from telugu_s2s.v1 import codec_pb2, codec_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = codec_pb2.DESCRIPTOR.services_by_name["Codec"].full_name
HEALTH_CHECK_METHOD = "/grpc.health.v1.Health/Check"
# Trailing metadata on health checks (the health protocol has no detail field).
WEIGHTS_METADATA_KEY = "ts2s-codec-weights"
WARNING_METADATA_KEY = "ts2s-codec-warning"
RANDOM_WEIGHTS_WARNING = "codec weights are RANDOM (untrained): output is noise"
READER_QUEUE = 64


class BadRequest(ValueError):
    """Client input that violates the Codec contract (-> INVALID_ARGUMENT)."""


def info_of(codec: StreamingCodec) -> CodecInfo:
    return CodecInfo(
        sample_rate_hz=codec.sample_rate,
        frame_rate_hz=codec.frame_rate,
        samples_per_frame=codec.hop,
        n_codebooks=codec.n_codebooks,
        codebook_size=codec.codebook_size,
        bandwidth_kbps=codec.bandwidth_kbps,
        weights=codec.loaded.weights_id,
        random_weights=codec.loaded.random,
    )


class _Reader:
    """Reads a request stream in a task so input keeps arriving while frames compute."""

    _END = object()

    def __init__(self, requests: AsyncIterator) -> None:
        self._queue: asyncio.Queue = asyncio.Queue(READER_QUEUE)
        self._task = asyncio.get_running_loop().create_task(self._run(requests))

    async def _run(self, requests: AsyncIterator) -> None:
        try:
            async for msg in requests:
                await self._queue.put(msg)
        finally:
            await self._queue.put(self._END)

    async def read(self):
        """The next message, or grpc.aio.EOF after the last one."""
        msg = await self._queue.get()
        if msg is self._END:
            self._queue.put_nowait(msg)  # every later read sees the end too
            return grpc.aio.EOF
        return msg

    async def next_batch(self) -> tuple[list, bool]:
        """Every message available now (at least one); ended=True after the last one."""
        msgs = [await self._queue.get()]
        while not self._queue.empty():
            msgs.append(self._queue.get_nowait())
        ended = msgs[-1] is self._END
        return [m for m in msgs if m is not self._END], ended

    def cancel(self) -> None:
        self._task.cancel()


class CodecServicer(codec_pb2_grpc.CodecServicer):
    def __init__(
        self, engine: CodecEngine, info: CodecInfo, metrics: CodecMetrics | None, max_hold_s: float = 0.03
    ) -> None:
        self.engine = engine
        self.info = info
        self.metrics = metrics
        self.max_hold_s = max_hold_s  # held frames go to the model when nothing arrives for this long

    # ------------------------------------------------------------ validation
    def _pcm(self, msg: codec_pb2.AudioIn) -> np.ndarray:
        if msg.sample_rate_hz != self.info.sample_rate_hz and (msg.pcm16 or msg.sample_rate_hz):
            raise BadRequest(
                f"sample_rate_hz={msg.sample_rate_hz} but the codec runs at "
                f"{self.info.sample_rate_hz} Hz; resample the audio to {self.info.sample_rate_hz} Hz"
            )
        if len(msg.pcm16) % 2:
            raise BadRequest(
                f"pcm16 must be 16-bit little-endian samples (an even byte count), got {len(msg.pcm16)} bytes"
            )
        return np.frombuffer(msg.pcm16, dtype="<i2")

    def _codes(self, msg: codec_pb2.CodeFrames) -> np.ndarray:
        c = msg.codes
        if c.n_frames == 0 and len(c.values) == 0:
            return np.zeros((self.info.n_codebooks, 0), dtype=np.int64)
        if c.n_codebooks != self.info.n_codebooks:
            raise BadRequest(
                f"codes have n_codebooks={c.n_codebooks} but the codec uses {self.info.n_codebooks} "
                f"codebooks at {self.info.bandwidth_kbps:g} kbps"
            )
        try:
            return codes_lib.from_proto(c, codebook_size=self.info.codebook_size)
        except codes_lib.CodesError as exc:
            raise BadRequest(f"{exc} (codebook size is {self.info.codebook_size})") from exc

    async def _abort(self, context, op: str, exc: BadRequest, reader: _Reader) -> None:
        """End the stream with INVALID_ARGUMENT, after the caller's queued writes (refuse())."""
        if self.metrics:
            self.metrics.errors.labels(op, "INVALID_ARGUMENT").inc()
        await refuse(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc), read=reader.read)

    # ------------------------------------------------------------ streams
    async def _segments(self, op: str, open_session, parse, flush, has_data, request_iterator, context):
        """The loop both streams share: read what has arrived, parse it (a bad message aborts
        the stream with INVALID_ARGUMENT), push it through the session, end a segment where a
        message says so, and on half-close end the open one (if it has data, or none ended)."""
        session = open_session()
        reader = _Reader(request_iterator)
        segments_ended = 0
        try:
            while True:
                if session.held_frames:
                    try:
                        msgs, ended = await asyncio.wait_for(reader.next_batch(), self.max_hold_s)
                    except TimeoutError:  # the stream went quiet: what is held goes now
                        for out in await flush(session, [], False, True):
                            yield out
                        continue
                else:
                    msgs, ended = await reader.next_batch()
                pending: list[np.ndarray] = []
                for msg in msgs:
                    try:
                        pending.append(parse(msg))
                    except BadRequest as exc:
                        await self._abort(context, op, exc, reader)
                        return
                    if msg.end_of_segment:
                        for out in await flush(session, pending, True):
                            yield out
                        pending = []
                        segments_ended += 1
                if pending:
                    for out in await flush(session, pending, False):
                        yield out
                if ended:
                    if has_data(session) or segments_ended == 0:
                        for out in await flush(session, [], True):
                            yield out
                    return
        finally:
            reader.cancel()
            session.close()

    def _stream(self, op: str, request_iterator, context):
        """`_segments` for one op, closed as soon as the call ends (a cancelled call frees its
        session at once)."""
        if op == "encode":
            opened, parse, flush = self.engine.open_encoder, self._pcm, self._encode_flush
            has_data = lambda s: s.segment_samples > 0  # noqa: E731
        else:
            opened, parse, flush = self.engine.open_decoder, self._codes, self._decode_flush  # type: ignore[assignment]
            has_data = lambda s: s.segment_frames > 0  # noqa: E731
        return contextlib.aclosing(self._segments(op, opened, parse, flush, has_data, request_iterator, context))

    # ------------------------------------------------------------ Encode
    def _code_frames(self, first: int, codes: np.ndarray, eos: bool) -> codec_pb2.CodeFrames:
        return codec_pb2.CodeFrames(codes=codes_lib.to_proto(codes), first_frame=first, end_of_segment=eos)

    async def Encode(self, request_iterator, context):  # gRPC needs an async generator function here
        async with self._stream("encode", request_iterator, context) as segments:
            async for out in segments:
                yield out

    async def _encode_flush(self, session: EncodeSession, pcm: list[np.ndarray], eos: bool, force: bool = False):
        out = []
        samples = np.concatenate(pcm) if pcm else np.zeros(0, dtype=np.int16)
        first, codes = await session.push(samples, force=force or eos)
        if eos:
            _, tail = await session.end_segment()
            codes = np.concatenate([codes, tail], axis=1)
            out.append(self._code_frames(first, codes, True))
            if self.metrics:
                self.metrics.segments.labels("encode").inc()
        elif codes.shape[1]:
            out.append(self._code_frames(first, codes, False))
        return out

    # ------------------------------------------------------------ Decode
    def _audio_out(self, first: int, audio: np.ndarray, eos: bool) -> codec_pb2.AudioOut:
        return codec_pb2.AudioOut(
            pcm16=float_to_int16(audio).astype("<i2").tobytes(),
            sample_rate_hz=self.info.sample_rate_hz,
            first_sample=first,
            end_of_segment=eos,
        )

    async def Decode(self, request_iterator, context):  # gRPC needs an async generator function here
        async with self._stream("decode", request_iterator, context) as segments:
            async for out in segments:
                yield out

    async def _decode_flush(self, session: DecodeSession, blocks: list[np.ndarray], eos: bool, force: bool = False):
        codes = codes_lib.concat(blocks, self.info.n_codebooks)
        first, audio = await session.push(codes, force=eos or force)
        if eos:
            session.reset()
            if self.metrics:
                self.metrics.segments.labels("decode").inc()
        return [self._audio_out(first, audio, eos)] if eos or audio.size else []

    # ------------------------------------------------------------ Info
    async def Info(self, request, context):
        return self.info.to_proto()


class HealthDetailInterceptor(grpc.aio.ServerInterceptor):
    """Adds which weights are loaded (and a warning for random ones) to health-check trailers."""

    def __init__(self, info: CodecInfo) -> None:
        self.metadata = [(WEIGHTS_METADATA_KEY, info.weights)]
        if info.random_weights:
            self.metadata.append((WARNING_METADATA_KEY, RANDOM_WEIGHTS_WARNING))

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method != HEALTH_CHECK_METHOD or not handler.unary_unary:
            return handler
        inner = handler.unary_unary
        metadata = tuple(self.metadata)

        async def check(request, context):
            context.set_trailing_metadata(metadata)
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            check,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


@dataclass
class RunningCodec:
    service: GrpcService
    engine: CodecEngine
    info: CodecInfo
    port: int

    async def stop(self) -> None:
        self.service.request_stop()
        await self.service.wait_and_drain()


def load_codec(cfg: Config) -> StreamingCodec:
    """Weights (in order of preference) -> a StreamingCodec at the configured bandwidth."""
    loaded = resolve(
        weights=cfg.weights,
        hub_dir=cfg.hub_dir,
        checkpoint_dir=cfg.checkpoint_dir,
        allow_random=cfg.allow_random_weights,
    )
    return StreamingCodec(loaded, cfg.bandwidth_kbps, device=cfg.device)


async def start(cfg: Config, loaded: LoadedCodec | None = None, metrics: CodecMetrics | None = None) -> RunningCodec:
    """Load weights, warm up, bind, and go SERVING. `loaded` overrides weight resolution (tests)."""
    import torch

    torch.set_num_threads(1)  # intra-op; parallelism comes from the worker pool
    loop = asyncio.get_running_loop()
    if loaded is None:
        codec = await loop.run_in_executor(None, load_codec, cfg)
    else:
        codec = StreamingCodec(loaded, cfg.bandwidth_kbps, device=cfg.device)
    metrics = metrics if metrics is not None else default_metrics()
    info = info_of(codec)
    engine = CodecEngine(
        codec,
        workers=cfg.torch_threads,
        max_batch=cfg.max_batch,
        batch_wait_s=cfg.batch_wait_ms / 1000.0,
        encode_min_frames=cfg.encode_min_frames,
        decode_min_frames=cfg.decode_min_frames,
        decode_lead_frames=cfg.decode_lead_frames,
        urgent_lane=cfg.urgent_lane,
        metrics=metrics,
    )
    service = TlsGrpcService(
        "codec",
        cfg.host,
        cfg.port,
        service_names=[SERVICE_NAME],
        grace_s=cfg.grace_s,
        interceptors=[HealthDetailInterceptor(info)],
        tls=cfg.tls,
    )
    codec_pb2_grpc.add_CodecServicer_to_server(
        CodecServicer(engine, info, metrics, cfg.max_hold_ms / 1000.0), service.server
    )
    service.on_close(engine.close)
    await engine.start()
    await engine.warm_up()
    if cfg.metrics_port:
        start_metrics_server(cfg.host, cfg.metrics_port)
    port = await service.start()
    await service.health.set(True)
    level = logging.WARNING if info.random_weights else logging.INFO
    log.log(
        level,
        "codec serving" + (f" ({RANDOM_WEIGHTS_WARNING})" if info.random_weights else ""),
        extra={
            "port": port,
            "weights": info.weights,
            "random_weights": info.random_weights,
            "sample_rate_hz": info.sample_rate_hz,
            "frame_rate_hz": info.frame_rate_hz,
            "n_codebooks": info.n_codebooks,
            "bandwidth_kbps": info.bandwidth_kbps,
            "workers": cfg.torch_threads,
            "max_batch": cfg.max_batch,
            "batch_wait_ms": cfg.batch_wait_ms,
            "encode_min_frames": cfg.encode_min_frames,
            "decode_min_frames": cfg.decode_min_frames,
            "decode_lead_frames": cfg.decode_lead_frames,
            "max_hold_ms": cfg.max_hold_ms,
        },
    )
    return RunningCodec(service, engine, info, port)


async def serve(cfg: Config) -> None:
    running = await start(cfg)
    running.service.install_signal_handlers()
    await running.service.wait_and_drain()
