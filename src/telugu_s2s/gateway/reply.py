"""The reply pipeline of one turn: generate -> decode -> resample -> the paced output.

    GenerationRequest -> S2S (Triton, streamed code blocks) -> codec Decode stream
                      -> resample to the caller's rate -> encode (PCM16 / G.711)
                      -> reply chunks of REPLY_CHUNK_MS -> emit

Two tasks: the feeder moves code blocks from the model into the Decode stream while the
reader takes audio out of it, so decoding starts with the first block. Everything it
produced and when is recorded on the turn's `Reply`. Cancelling `run` (a barge-in) stops
both tasks and the streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import numpy as np

from telugu_s2s.common import audio as audio_mod
from telugu_s2s.common.audio import AudioFormat
from telugu_s2s.common.codec_info import CodecInfo
from telugu_s2s.gateway import metrics
from telugu_s2s.gateway.codec_client import CodecClient, DecodeStream
from telugu_s2s.gateway.errors import DownstreamUnavailable
from telugu_s2s.gateway.generation import S2SGenerator, close_iterator
from telugu_s2s.gateway.output import Reply
from telugu_s2s.s2s.protocol import GenerationRequest

# Reply audio is sent in chunks of at most this length.
REPLY_CHUNK_MS = 100


class GenerationFailed(Exception):
    pass


def ms_between(t0: float | None, t1: float | None) -> float:
    if t0 is None or t1 is None:
        return 0.0
    return max(0.0, (t1 - t0) * 1000.0)


class ReplyPipeline:
    def __init__(
        self,
        codec: CodecClient,
        generator: S2SGenerator,
        info: CodecInfo,
        out_fmt: AudioFormat,
        emit: Callable[[bytes, int], Awaitable[None]],
    ) -> None:
        """`emit(data, n_samples)` takes each reply chunk, already in `out_fmt`."""
        self._codec = codec
        self._generator = generator
        self._info = info
        self._out_fmt = out_fmt
        self._emit = emit

    async def run(
        self, req: GenerationRequest, reply: Reply, gate: asyncio.Event | None = None, held_frames: int = 0
    ) -> None:
        """Produce the whole reply; raises what failed (after the audio made so far was emitted).
        With a `gate` that is not set yet, at most `held_frames` frames go to the decoder until it
        is (a held reply prepares its start, not all of it)."""
        out_fmt = self._out_fmt
        resampler = audio_mod.StreamResampler(self._info.sample_rate_hz, out_fmt.sample_rate_hz)
        chunk = max(1, out_fmt.sample_rate_hz * REPLY_CHUNK_MS // 1000)
        decoder = self._codec.decoder(self._info)
        feeder = asyncio.create_task(
            self._feed(req, reply, decoder, gate, held_frames), name=f"turn-{req.request_id[:8]}-generate"
        )
        try:
            while True:
                out = await decoder.read()
                if out is None:
                    break
                if out.samples.size and reply.first_audio_t is None:
                    reply.first_audio_t = time.perf_counter()
                    metrics.STAGE.labels("first_decode").observe(
                        ms_between(reply.first_decode_sent_t, reply.first_audio_t) / 1000
                    )
                samples = resampler.process(out.samples, last=out.end_of_segment)
                for i in range(0, samples.size, chunk):
                    part = samples[i : i + chunk]
                    await self._emit(audio_mod.encode_samples(part, out_fmt), part.size)
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

    async def _feed(
        self,
        req: GenerationRequest,
        reply: Reply,
        decoder: DecodeStream,
        gate: asyncio.Event | None,
        held_frames: int,
    ) -> None:
        k = self._info.n_codebooks
        fed = 0
        it = self._generator.generate(req)
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
                    metrics.STAGE.labels("first_frame").observe(
                        ms_between(reply.gen_sent_t, reply.first_frame_t) / 1000
                    )
                reply.generated.append(block.astype(np.int64))
                if gate is not None and fed >= held_frames:
                    await gate.wait()
                if reply.first_decode_sent_t is None:
                    reply.first_decode_sent_t = time.perf_counter()
                await decoder.write(block)
                fed += block.shape[1]
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
