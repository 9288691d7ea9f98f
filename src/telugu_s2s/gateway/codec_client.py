"""Client of the codec service: Info, health, and per-segment Encode / Decode streams."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from telugu_s2s.common import codes as codes_mod
from telugu_s2s.common.codec_info import CodecInfo
from telugu_s2s.gateway.channels import channel_options
from telugu_s2s.gateway.errors import DownstreamError, DownstreamUnavailable, translate_rpc_error
from telugu_s2s.v1 import codec_pb2, codec_pb2_grpc, common_pb2

SERVICE = "codec"


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # int16 at the codec rate
    first_sample: int
    end_of_segment: bool


class CodecClient:
    def __init__(self, target: str, timeout_s: float = 2.0, channel: grpc.aio.Channel | None = None) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self._channel = channel or grpc.aio.insecure_channel(target, options=channel_options())
        self._stub = codec_pb2_grpc.CodecStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def _error(self, exc: grpc.RpcError) -> Exception:
        return translate_rpc_error(exc, SERVICE, self.target)

    async def info(self) -> CodecInfo:
        try:
            msg = await self._stub.Info(codec_pb2.InfoRequest(), timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise self._error(exc) from exc
        info = CodecInfo.from_proto(msg)
        if info.sample_rate_hz <= 0 or info.frame_rate_hz <= 0 or info.n_codebooks <= 0:
            raise DownstreamError(SERVICE, None, f"codec Info is incomplete: {info}")
        return info

    async def healthy(self) -> bool:
        try:
            resp = await self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=self.timeout_s)
        except grpc.RpcError:
            return False
        return resp.status == health_pb2.HealthCheckResponse.SERVING

    def encoder(self, info: CodecInfo, queue_chunks: int = 256) -> EncodeStream:
        return EncodeStream(self, info, queue_chunks)

    def decoder(self, info: CodecInfo) -> DecodeStream:
        return DecodeStream(self, info)

    async def close(self) -> None:
        await self._channel.close()


_END = object()


class EncodeStream:
    """One user turn streamed into Codec.Encode.

    Audio is queued (bounded) and written by a task of its own so that a slow codec
    never stalls the caller's stream; `finish()` ends the segment and returns all
    codes [n_codebooks, n_frames]. One stream per turn keeps turns independent: a
    codec failure affects one turn only, and there is no state to carry between turns.
    """

    def __init__(self, client: CodecClient, info: CodecInfo, queue_chunks: int) -> None:
        self._client = client
        self._info = info
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=queue_chunks)
        self._call = client._stub.Encode()
        self._blocks: list[np.ndarray] = []
        self._n_frames = 0
        self._more = asyncio.Event()  # set whenever codes arrive or the stream ends
        self._writer = asyncio.create_task(self._write_loop(), name="codec-encode-writer")
        self._reader = asyncio.create_task(self._read_loop(), name="codec-encode-reader")
        self._finished = False

    async def push(self, samples: np.ndarray) -> None:
        if len(samples) == 0 or self._finished:
            return
        if self._reader.done():
            return  # the stream failed; finish() reports it
        await self._queue.put(np.asarray(samples, dtype=np.int16))

    async def finish(self) -> np.ndarray:
        """End the segment; return its codes. Raises DownstreamUnavailable/DownstreamError."""
        if not self._finished:
            self._finished = True
            if not self._reader.done() and not self._writer.done():
                await self._queue.put(_END)
        try:
            return await self._reader
        finally:
            await self.cancel()

    async def prefix(self, n_frames: int) -> np.ndarray:
        """The first `n_frames` codes, as soon as the codec has sent them, while the stream
        goes on (the codec encodes causally: they equal the first frames `finish()` returns).
        Fewer only if the stream ended first; raises what `finish()` would if it failed."""
        while self._n_frames < n_frames and not self._reader.done():
            self._more.clear()
            await self._more.wait()
        if self._reader.cancelled():
            raise DownstreamUnavailable(SERVICE, self._client.target, "Encode stream cancelled")
        if self._reader.done() and self._reader.exception() is not None:
            await self._reader  # raises it
        return codes_mod.concat(self._blocks, self._info.n_codebooks)[:, :n_frames]

    async def _write_loop(self) -> None:
        rate = self._info.sample_rate_hz
        try:
            while True:
                item = await self._queue.get()
                if item is _END:
                    await self._call.write(codec_pb2.AudioIn(sample_rate_hz=rate, end_of_segment=True))
                    await self._call.done_writing()
                    return
                assert isinstance(item, np.ndarray)
                await self._call.write(codec_pb2.AudioIn(pcm16=item.astype("<i2").tobytes(), sample_rate_hz=rate))
        except (grpc.RpcError, asyncio.InvalidStateError):
            return  # the reader sees the failure

    async def _read_loop(self) -> np.ndarray:
        try:
            while True:
                msg = await self._call.read()
                if msg is grpc.aio.EOF:
                    break
                if msg.codes.n_frames:
                    block = codes_mod.from_proto(msg.codes, codebook_size=self._info.codebook_size)
                    self._blocks.append(block)
                    self._n_frames += block.shape[1]
                    self._more.set()
                if msg.end_of_segment:
                    break
        except grpc.RpcError as exc:
            raise self._client._error(exc) from exc
        except codes_mod.CodesError as exc:
            raise DownstreamError(SERVICE, None, f"bad codes from Encode: {exc}") from exc
        finally:
            self._more.set()
        if not self._finished:
            raise DownstreamUnavailable(SERVICE, self._client.target, "Encode stream ended early")
        return codes_mod.concat(self._blocks, self._info.n_codebooks)

    async def cancel(self) -> None:
        self._call.cancel()
        for task in (self._writer, self._reader):
            if not task.done():
                task.cancel()
        await asyncio.gather(self._writer, self._reader, return_exceptions=True)


class DecodeStream:
    """One reply streamed through Codec.Decode: write code blocks, read audio."""

    def __init__(self, client: CodecClient, info: CodecInfo) -> None:
        self._client = client
        self._info = info
        self._call = client._stub.Decode()
        self._cancelled = False

    async def write(self, codes: np.ndarray) -> None:
        try:
            await self._call.write(codec_pb2.CodeFrames(codes=codes_mod.to_proto(codes)))
        except grpc.RpcError as exc:
            raise self._client._error(exc) from exc
        except asyncio.InvalidStateError as exc:
            raise DownstreamUnavailable(SERVICE, self._client.target, "Decode stream closed") from exc

    async def end(self) -> None:
        empty = common_pb2.Codes(n_codebooks=self._info.n_codebooks, n_frames=0)
        try:
            await self._call.write(codec_pb2.CodeFrames(codes=empty, end_of_segment=True))
            await self._call.done_writing()
        except grpc.RpcError as exc:
            raise self._client._error(exc) from exc
        except asyncio.InvalidStateError as exc:
            raise DownstreamUnavailable(SERVICE, self._client.target, "Decode stream closed") from exc

    async def read(self) -> DecodedAudio | None:
        """Next decoded audio; None when the stream ended."""
        try:
            msg = await self._call.read()
        except grpc.RpcError as exc:
            raise self._client._error(exc) from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._cancelled and task is not None and not task.cancelling():
                # grpc.aio raises CancelledError when the call itself was cancelled.
                raise DownstreamUnavailable(SERVICE, self._client.target, "Decode stream cancelled") from None
            raise
        if msg is grpc.aio.EOF:
            return None
        if len(msg.pcm16) % 2:
            raise DownstreamError(SERVICE, None, "Decode returned an odd PCM16 byte count")
        if msg.pcm16 and msg.sample_rate_hz != self._info.sample_rate_hz:
            raise DownstreamError(
                SERVICE,
                None,
                f"Decode returned {msg.sample_rate_hz} Hz audio, Info said {self._info.sample_rate_hz} Hz",
            )
        samples = np.frombuffer(msg.pcm16, dtype="<i2").astype(np.int16)
        return DecodedAudio(samples, int(msg.first_sample), bool(msg.end_of_segment))

    def cancel(self) -> None:
        self._cancelled = True
        with contextlib.suppress(Exception):
            self._call.cancel()
