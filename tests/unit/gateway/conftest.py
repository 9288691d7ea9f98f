from __future__ import annotations

import shutil
import subprocess
import wave
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import pytest
import soxr

from telugu_s2s.gateway.config import Config
from telugu_s2s.gateway.server import Gateway
from telugu_s2s.v1 import conversation_pb2 as pb
from telugu_s2s.v1 import conversation_pb2_grpc

from .fakes import FakeCodec, FakeContext, FakeGenerator, FakeS2SUnavailable

PHRASES = (
    "నమస్కారం, మీరు ఎలా ఉన్నారు?",
    "ఈ రోజు వాతావరణం చాలా బాగుంది.",
    "నాకు తెలుగు పాటలు అంటే ఇష్టం.",
)


def _trim(x: np.ndarray, threshold: int = 200) -> np.ndarray:
    idx = np.flatnonzero(np.abs(x.astype(np.int32)) > threshold)
    return x[idx[0] : idx[-1] + 1]


@pytest.fixture(scope="session")
def telugu_speech(tmp_path_factory) -> list[np.ndarray]:
    """Real Telugu speech (espeak-ng, voice `te`): one int16 16 kHz array per phrase, trimmed."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    out_dir = tmp_path_factory.mktemp("telugu")
    phrases = []
    for i, text in enumerate(PHRASES):
        path = Path(out_dir) / f"p{i}.wav"
        subprocess.run(["espeak-ng", "-v", "te", "-s", "160", "-w", str(path), text], check=True)
        with wave.open(str(path)) as w:
            rate = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
        y = soxr.resample(x, rate, 16000).astype(np.int16)
        phrases.append(_trim(y))
    return phrases


def silence(ms: int, rate: int = 16000) -> np.ndarray:
    return np.zeros(rate * ms // 1000, dtype=np.int16)


def to_rate(x: np.ndarray, rate: int) -> np.ndarray:
    return x if rate == 16000 else soxr.resample(x, 16000, rate).astype(np.int16)


def audio_messages(samples: np.ndarray, rate: int = 16000, chunk_ms: int = 20, encode=None) -> list[pb.ClientMessage]:
    step = rate * chunk_ms // 1000
    samples = np.concatenate([samples, np.zeros(-len(samples) % step, samples.dtype)])  # whole chunks
    out = []
    for i in range(0, len(samples), step):
        part = samples[i : i + step]
        data = encode(part) if encode else part.astype("<i2").tobytes()
        out.append(pb.ClientMessage(audio=pb.AudioChunk(audio=data)))
    return out


def config_message(**kw) -> pb.ClientMessage:
    return pb.ClientMessage(config=pb.SessionConfig(**kw))


def control(t, voice: str = "") -> pb.ClientMessage:
    return pb.ClientMessage(control=pb.Control(type=t, voice=voice))


@dataclass
class CallResult:
    messages: list[pb.ServerMessage]
    code: grpc.StatusCode
    details: str

    def of(self, kind: str) -> list:
        return [getattr(m, kind) for m in self.messages if m.WhichOneof("message") == kind]

    def kinds(self) -> list[str]:
        return [m.WhichOneof("message") for m in self.messages]


@dataclass
class Stack:
    gateway: Gateway
    port: int
    codec: FakeCodec
    context: FakeContext
    generator: FakeGenerator
    channel: grpc.aio.Channel
    stub: conversation_pb2_grpc.ConversationStub
    extra: dict = field(default_factory=dict)

    async def call(self, messages: list[pb.ClientMessage], *, half_close: bool = True, pace_s: float = 0) -> CallResult:
        """Send everything (`pace_s` apart), then read the whole answer (the reader runs concurrently)."""
        call = self.stub.Converse()
        received: list[pb.ServerMessage] = []

        async def read():
            async for m in call:
                received.append(m)

        import asyncio

        reader = asyncio.create_task(read())
        try:
            for m in messages:
                await call.write(m)
                if pace_s:
                    await asyncio.sleep(pace_s)
            if half_close:
                await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass
        try:
            await reader
        except grpc.aio.AioRpcError:
            pass
        return CallResult(received, await call.code(), await call.details())


async def start_stack(codec_kw=None, cfg_kw=None, gen_kw=None) -> Stack:
    codec = await FakeCodec.start(**(codec_kw or {}))
    context = await FakeContext.start()
    generator = FakeGenerator(n_codebooks=codec.n_codebooks, **(gen_kw or {}))
    # Unpaced by default so the tests run fast; the pacing test turns it on.
    # API keys off (explicit dev mode) unless a test turns them on.
    # Turns end by the silence timer: these tests drive the state machine with espeak-ng's
    # plain tune and fixed silences; the end-of-turn model has its own tests (test_turn_model).
    cfg_kw = {"playback_lead_ms": 0.0, "auth": "disabled", "turn_detection": "silence", **(cfg_kw or {})}
    cfg = Config(
        host="127.0.0.1",
        port=0,
        metrics_port=0,
        codec_target=codec.target,
        context_target=context.target,
        triton_target="fake-triton:0",
        drain_grace_s=1.0,
        **cfg_kw,
    )
    gateway = Gateway(cfg, generator, (FakeS2SUnavailable,))
    port = await gateway.start(monitor=False)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    return Stack(gateway, port, codec, context, generator, channel, conversation_pb2_grpc.ConversationStub(channel))


async def stop_stack(s: Stack) -> None:
    await s.channel.close()
    await s.gateway.stop()
    await s.codec.stop()
    await s.context.stop()


@pytest.fixture
async def stack():
    s = await start_stack()
    yield s
    await stop_stack(s)


@pytest.fixture
async def make_stack():
    """Start stacks with custom fakes/config; all are stopped after the test."""
    started: list[Stack] = []

    async def make(**kw) -> Stack:
        s = await start_stack(**kw)
        started.append(s)
        return s

    yield make
    for s in started:
        await stop_stack(s)


class LiveCall:
    """An open Converse call: send at will, wait for server messages as they come."""

    def __init__(self, stub: conversation_pb2_grpc.ConversationStub) -> None:
        import asyncio

        self.call = stub.Converse()
        self.messages: list[pb.ServerMessage] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for m in self.call:
                self.messages.append(m)
                self._changed.set()
        finally:
            self._changed.set()

    async def send(self, *messages: pb.ClientMessage) -> None:
        for m in messages:
            await self.call.write(m)

    def of(self, kind: str) -> list:
        return [getattr(m, kind) for m in self.messages if m.WhichOneof("message") == kind]

    async def wait(self, kind: str, count: int = 1, timeout: float = 10.0) -> list:
        import asyncio

        async def until() -> None:
            while len(self.of(kind)) < count:
                if self._reader.done():
                    raise AssertionError(f"call ended before {count} {kind}: {[m.WhichOneof('message') for m in self.messages]}")
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)
        return self.of(kind)

    async def finish(self) -> CallResult:
        """Half-close and read to the end."""
        try:
            await self.call.done_writing()
        except Exception:  # noqa: BLE001 - the call may already have ended
            pass
        try:
            await self._reader
        except grpc.aio.AioRpcError:
            pass
        return CallResult(self.messages, await self.call.code(), await self.call.details())

    async def ended(self, timeout: float = 10.0) -> CallResult:
        """Wait for the server to end the call (without half-closing)."""
        import asyncio

        try:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        except grpc.aio.AioRpcError:
            pass
        return CallResult(self.messages, await self.call.code(), await self.call.details())

    def cancel(self) -> None:
        self.call.cancel()
