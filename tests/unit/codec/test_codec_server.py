"""The codec gRPC service in-process on port 0: Encode, Decode, Info, health, bad input."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import numpy as np
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

from telugu_s2s.codec.config import Config
from telugu_s2s.codec.metrics import CodecMetrics
from telugu_s2s.codec.server import SERVICE_NAME, WARNING_METADATA_KEY, start
from telugu_s2s.codec.streaming import StreamingCodec
from telugu_s2s.common import codes as codes_lib
from telugu_s2s.v1 import codec_pb2, codec_pb2_grpc

SR = 16000
HOP = 320


def _cfg(**kw) -> Config:
    base = dict(host="127.0.0.1", port=0, metrics_port=0, bandwidth_kbps=0.6, batch_wait_ms=1.0, grace_s=0.5)
    base.update(kw)
    return Config(**base)


@contextlib.asynccontextmanager
async def _serving(tiny_loaded, registry=None, **cfg):
    """A codec service on port 0 with `cfg` overrides: (running, stub, channel)."""
    from prometheus_client import CollectorRegistry

    registry = registry if registry is not None else CollectorRegistry()
    running = await start(_cfg(**cfg), loaded=tiny_loaded, metrics=CodecMetrics(registry))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield running, codec_pb2_grpc.CodecStub(channel), channel
    finally:
        await channel.close()
        await running.stop()


@pytest.fixture
async def server(tiny_loaded):
    async with _serving(tiny_loaded) as served:
        yield served


def _pcm(n_samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / SR
    x = 0.3 * np.sin(2 * np.pi * 200 * t) + 0.02 * rng.standard_normal(n_samples)
    return (x * 32767).astype(np.int16)


def _audio_in(pcm: np.ndarray, eos: bool = False, sr: int = SR) -> codec_pb2.AudioIn:
    return codec_pb2.AudioIn(pcm16=pcm.astype("<i2").tobytes(), sample_rate_hz=sr, end_of_segment=eos)


def _reference_codes(loaded, pcm: np.ndarray) -> np.ndarray:
    codec = StreamingCodec(loaded, 0.6)
    n = -(-pcm.size // HOP)
    x = np.zeros(n * HOP, dtype=np.float32)
    x[: pcm.size] = pcm.astype(np.float32) / 32768.0
    return codec.reference_encode(torch.from_numpy(x).view(1, -1))[0].numpy()


async def test_info_and_health(server):
    running, stub, channel = server
    info = await stub.Info(codec_pb2.InfoRequest())
    assert (info.sample_rate_hz, info.samples_per_frame, info.frame_rate_hz) == (SR, HOP, 50.0)
    assert (info.n_codebooks, info.codebook_size) == (2, 64)
    assert info.weights == "random" and info.random_weights
    health = health_pb2_grpc.HealthStub(channel)
    call = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    resp = await call
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    trailers = dict(await call.trailing_metadata())
    assert "RANDOM" in trailers[WARNING_METADATA_KEY]


async def test_encode_chunked_segments_equal_whole(server, tiny_loaded):
    running, stub, _ = server
    seg1, seg2 = _pcm(HOP * 7 + 123, seed=1), _pcm(HOP * 4 + 5, seed=2)
    chunk = SR * 37 // 1000

    async def requests():
        for seg in (seg1, seg2):
            for i in range(0, seg.size, chunk):
                yield _audio_in(seg[i : i + chunk])
            yield codec_pb2.AudioIn(sample_rate_hz=SR, end_of_segment=True)

    segments, current, firsts = [], [], []
    async for out in stub.Encode(requests()):
        c = codes_lib.from_proto(out.codes)
        firsts.append(out.first_frame)
        current.append(c)
        if out.end_of_segment:
            segments.append(np.concatenate(current, axis=1))
            current = []
    assert len(segments) == 2
    np.testing.assert_array_equal(segments[0], _reference_codes(tiny_loaded, seg1))
    np.testing.assert_array_equal(segments[1], _reference_codes(tiny_loaded, seg2))
    assert firsts[0] == 0 and 0 in firsts[1:]  # frame index restarts with the second segment


async def test_encode_half_close_ends_segment(server, tiny_loaded):
    _, stub, _ = server
    pcm = _pcm(HOP * 3 + 10)
    outs = [o async for o in stub.Encode(iter([_audio_in(pcm)]))]
    assert outs[-1].end_of_segment
    got = np.concatenate([codes_lib.from_proto(o.codes) for o in outs], axis=1)
    np.testing.assert_array_equal(got, _reference_codes(tiny_loaded, pcm))


async def test_encode_emits_frames_before_segment_end(server):
    _, stub, _ = server
    call = stub.Encode()
    await call.write(_audio_in(_pcm(HOP * 2 + 50)))
    first = await call.read()
    assert first.codes.n_frames == 2 and not first.end_of_segment
    await call.done_writing()
    last = await call.read()
    assert last.end_of_segment and last.codes.n_frames == 1 and last.first_frame == 2


async def test_decode_matches_whole_signal_decode(server, tiny_loaded):
    _, stub, _ = server
    codec = StreamingCodec(tiny_loaded, 0.6)
    codes = np.random.default_rng(0).integers(0, 64, size=(2, 9))

    async def requests():
        for i in range(0, 9, 2):
            yield codec_pb2.CodeFrames(codes=codes_lib.to_proto(codes[:, i : i + 2]))
        yield codec_pb2.CodeFrames(end_of_segment=True)

    outs = [o async for o in stub.Decode(requests())]
    assert outs[-1].end_of_segment and outs[0].sample_rate_hz == SR
    pcm = np.frombuffer(b"".join(o.pcm16 for o in outs), dtype="<i2")
    ref = codec.reference_decode(torch.from_numpy(codes).view(1, 2, 9))[0].numpy()
    assert pcm.size == 9 * HOP
    expected = (np.clip(ref, -1, 1) * 32767).astype(np.int16)
    assert np.abs(pcm.astype(np.int32) - expected).max() <= 1


async def _read_all(call) -> list:
    out = []
    while (msg := await call.read()) is not grpc.aio.EOF:
        out.append(msg)
    return out


async def test_held_frames_go_to_the_model_in_groups_and_give_the_same_codes_and_audio(tiny_loaded):
    """encode_min_frames / decode_min_frames / decode_lead_frames change when frames are
    computed, never what comes out: the segment's end takes whatever is pending."""
    held = dict(encode_min_frames=4, decode_min_frames=4, decode_lead_frames=2, max_hold_ms=60_000)
    async with _serving(tiny_loaded, **held) as (_, stub, _):
        pcm = _pcm(HOP * 11 + 77, seed=3)
        call = stub.Encode()
        await call.write(_audio_in(pcm[: HOP * 3]))  # 3 frames: held
        await call.write(_audio_in(pcm[HOP * 3 : HOP * 5]))  # 5 pending: out together
        first = await call.read()
        assert first.codes.n_frames == 5 and first.first_frame == 0
        await call.write(_audio_in(pcm[HOP * 5 :]))  # 6 more frames and a partial one
        await call.done_writing()
        rest = await _read_all(call)
        got = np.concatenate([codes_lib.from_proto(o.codes) for o in [first, *rest]], axis=1)
        np.testing.assert_array_equal(got, _reference_codes(tiny_loaded, pcm))
        assert rest[-1].end_of_segment

        codec = StreamingCodec(tiny_loaded, 0.6)
        codes = np.random.default_rng(1).integers(0, 64, size=(2, 12))
        call = stub.Decode()
        outs = []
        for i in range(12):  # one frame per message, each answered before the next goes
            await call.write(codec_pb2.CodeFrames(codes=codes_lib.to_proto(codes[:, i : i + 1])))
            if i < 2 or i in (5, 9):
                outs.append(await call.read())
        await call.write(codec_pb2.CodeFrames(end_of_segment=True))
        await call.done_writing()
        outs += await _read_all(call)
        # the lead's two frames at once, then groups of four, the segment's end takes the last two
        assert [len(o.pcm16) // 2 // HOP for o in outs] == [1, 1, 4, 4, 2] and outs[-1].end_of_segment
        pcm = np.frombuffer(b"".join(o.pcm16 for o in outs), dtype="<i2")
        ref = codec.reference_decode(torch.from_numpy(codes).view(1, 2, 12))[0].numpy()
        expected = (np.clip(ref, -1, 1) * 32767).astype(np.int16)
        assert np.abs(pcm.astype(np.int32) - expected).max() <= 1


async def test_held_frames_go_out_when_the_stream_goes_quiet(tiny_loaded):
    """A caller who stops sending (the gateway reading a turn's codes while the stream stays
    open) still gets every complete frame, max_hold_ms after the last message."""
    quiet = dict(encode_min_frames=8, decode_min_frames=8, max_hold_ms=50)
    async with _serving(tiny_loaded, **quiet) as (_, stub, _):
        pcm = _pcm(HOP * 3 + 40, seed=4)
        call = stub.Encode()
        await call.write(_audio_in(pcm))
        out = await asyncio.wait_for(call.read(), 5)
        assert out.codes.n_frames == 3 and not out.end_of_segment
        np.testing.assert_array_equal(codes_lib.from_proto(out.codes), _reference_codes(tiny_loaded, pcm)[:, :3])
        call.cancel()

        call = stub.Decode()
        codes = np.random.default_rng(2).integers(0, 64, size=(2, 3))
        await call.write(codec_pb2.CodeFrames(codes=codes_lib.to_proto(codes)))
        out = await asyncio.wait_for(call.read(), 5)
        assert len(out.pcm16) // 2 == 3 * HOP and not out.end_of_segment
        call.cancel()


@pytest.mark.parametrize(
    "message, needle",
    [
        (codec_pb2.AudioIn(pcm16=b"\x00\x01\x02", sample_rate_hz=SR), "even byte count"),
        (codec_pb2.AudioIn(pcm16=b"\x00\x01", sample_rate_hz=24000), "resample"),
    ],
)
async def test_encode_bad_input(server, message, needle):
    _, stub, _ = server
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stub.Encode(iter([message])):
            pass
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in err.value.details()


@pytest.mark.parametrize(
    "codes, needle",
    [
        (codec_pb2.CodeFrames(codes=codes_lib.to_proto(np.full((2, 3), 64))), "out of range"),
        (codec_pb2.CodeFrames(codes=codes_lib.to_proto(np.zeros((3, 3), dtype=np.int64))), "n_codebooks=3"),
        (codec_pb2.CodeFrames(codes={"n_codebooks": 2, "n_frames": 3, "values": [1, 2]}), "n_codebooks x n_frames"),
    ],
)
async def test_decode_bad_input(server, codes, needle):
    _, stub, _ = server
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stub.Decode(iter([codes])):
            pass
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in err.value.details()


async def test_cancelled_streams_free_their_state(server):
    running, stub, _ = server
    engine = running.engine
    sem = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        async with sem:
            call = stub.Encode() if i % 2 else stub.Decode()
            if i % 2:
                await call.write(_audio_in(_pcm(HOP + 1)))
            else:
                await call.write(codec_pb2.CodeFrames(codes=codes_lib.to_proto(np.ones((2, 1), dtype=np.int64))))
            await call.read()
            call.cancel()

    await asyncio.gather(*(one(i) for i in range(2000)))
    for _ in range(200):  # the server sees each cancellation asynchronously
        if engine.active_streams == 0:
            break
        await asyncio.sleep(0.01)
    assert engine.active_streams == 0


async def test_many_concurrent_streams_are_batched(server, tiny_loaded):
    running, stub, _ = server
    pcm = _pcm(HOP * 6)

    async def one():
        return [o async for o in stub.Encode(iter([_audio_in(pcm[i : i + HOP]) for i in range(0, pcm.size, HOP)]))]

    results = await asyncio.gather(*(one() for _ in range(16)))
    ref = _reference_codes(tiny_loaded, pcm)
    for outs in results:
        got = np.concatenate([codes_lib.from_proto(o.codes) for o in outs], axis=1)
        np.testing.assert_array_equal(got, ref)
    assert running.engine.active_streams == 0


async def test_model_compute_is_counted_by_the_wall_clock_and_by_cpu_time(tiny_loaded):
    from prometheus_client import CollectorRegistry, generate_latest

    from telugu_s2s.client.codec_throughput import parse_counters

    registry = CollectorRegistry()
    async with _serving(tiny_loaded, registry=registry) as (_, stub, _channel):
        pcm = _pcm(HOP * 40)
        outs = [o async for o in stub.Encode(iter([_audio_in(pcm, eos=True)]))]
        assert sum(o.codes.n_frames for o in outs) == 40
        counters = parse_counters(generate_latest(registry).decode())["encode"]
    assert counters["audio"] == pytest.approx((40 + 2) * HOP / SR)  # and the 2 frames of the warm-up
    # the worker thread's CPU time is counted, and cannot exceed the wall time around it
    assert 0 < counters["cpu"] <= counters["wall"] + 1e-3


async def test_a_bad_message_among_fast_writes_gets_invalid_argument_not_internal(server):
    """The stream ends at the bad message while the caller still writes; the status must not
    overtake those writes (grpc clients then report INTERNAL "Internal error from Core")."""
    _, stub, _ = server
    good = _audio_in(_pcm(HOP))
    codes = []
    for _ in range(10):
        call = stub.Encode()
        try:
            await call.write(codec_pb2.AudioIn(pcm16=b"\x00\x01\x02", sample_rate_hz=SR))
            for _ in range(60):
                await call.write(good)
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass
        codes.append((await call.code(), "even byte count" in await call.details()))
    assert codes == [(grpc.StatusCode.INVALID_ARGUMENT, True)] * 10, codes
