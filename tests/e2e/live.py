"""Helpers for tests that break a running stack: a live caller, a fault stack, process RSS.

`LiveCaller` keeps a real call open the way a phone does (20 ms chunks at the wall clock,
silence while listening), records every server message with its arrival time, and lets a
test wait for a given message while it kills, stops or restarts services.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from telugu_s2s.local.stack import LocalStack, StackConfig
from telugu_s2s.v1 import context_pb2, context_pb2_grpc
from telugu_s2s.v1 import conversation_pb2 as pb
from telugu_s2s.v1 import conversation_pb2_grpc as pb_grpc
from tests.e2e.conftest import stack_config

RATE = 16000
CHUNK = RATE * 20 // 1000
SILENCE = np.zeros(CHUNK, np.int16)


def fault_stack(run_dir: Path, codec_replicas: int = 1, triton_replicas: int = 1, **gateway_env: str) -> LocalStack:
    """A stack of its own (free ports, no web page), started; the caller stops it."""
    env = {
        "TS2S_GATEWAY_HEALTH_INTERVAL_S": "0.5",
        "TS2S_GATEWAY_MAX_REPLY_S": "3",
        **gateway_env,
    }
    cfg: StackConfig = replace(
        stack_config(run_dir),
        web_port=0,
        codec_replicas=codec_replicas,
        triton_replicas=triton_replicas,
        extra_gateway_env=tuple(env.items()),
    )
    stack = LocalStack(cfg, say=lambda m: None)
    stack.start()
    return stack


@dataclass
class Received:
    t: float
    kind: str
    msg: pb.ServerMessage


@dataclass
class LiveCaller:
    target: str
    session_id: str = ""
    voice: str = ""
    output_rate: int = RATE
    read: bool = True  # False: a caller that never reads its stream
    # Client channel options, e.g. [("grpc.http2.bdp_probe", 0)] keeps the receive window at 64 KiB.
    channel_options: tuple[tuple[str, object], ...] = ()
    received: list[Received] = field(default_factory=list)
    code: grpc.StatusCode | None = None
    details: str = ""
    ended_at: float | None = None

    async def __aenter__(self) -> "LiveCaller":
        self._channel = grpc.aio.insecure_channel(self.target, options=list(self.channel_options))
        self._call = pb_grpc.ConversationStub(self._channel).Converse()
        self._queue: deque[np.ndarray] = deque()
        self._changed = asyncio.Event()
        self._talker = asyncio.create_task(self._talk())
        self._reader = asyncio.create_task(self._read()) if self.read else None
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        for task in (self._talker, self._reader):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._talker, self._reader) if t is not None), return_exceptions=True)
        self._call.cancel()
        await self._channel.close()

    def vanish(self) -> None:
        """The caller drops the stream (app killed, network gone)."""
        self._call.cancel()

    def say(self, samples: np.ndarray, pause_ms: int = 700) -> None:
        """Queue an utterance (int16, 16 kHz) followed by `pause_ms` of silence."""
        speech = np.concatenate([samples, np.zeros(RATE * pause_ms // 1000, np.int16)])
        speech = np.concatenate([speech, np.zeros(-len(speech) % CHUNK, np.int16)])  # whole 20 ms chunks
        for i in range(0, len(speech), CHUNK):
            self._queue.append(speech[i : i + CHUNK])

    async def _talk(self) -> None:
        cfg = pb.SessionConfig(
            session_id=self.session_id,
            voice=self.voice,
            input_format=pb.AudioFormat(encoding=pb.PCM16, sample_rate_hz=RATE),
            output_format=pb.AudioFormat(encoding=pb.PCM16, sample_rate_hz=self.output_rate),
            vad=pb.VadSettings(silence_duration_ms=500),
        )
        try:
            await self._call.write(pb.ClientMessage(config=cfg))
            clock = time.monotonic()
            while True:
                chunk = self._queue.popleft() if self._queue else SILENCE
                await self._call.write(pb.ClientMessage(audio=pb.AudioChunk(audio=chunk.astype("<i2").tobytes())))
                clock += 0.02
                await asyncio.sleep(max(0.0, clock - time.monotonic()))
        except (grpc.RpcError, asyncio.InvalidStateError, grpc.aio.UsageError):
            return  # the call ended

    async def _read(self) -> None:
        try:
            async for msg in self._call:
                self.received.append(Received(time.monotonic(), msg.WhichOneof("message"), msg))
                self._changed.set()
        except grpc.aio.AioRpcError:
            pass
        except asyncio.CancelledError:
            raise
        finally:
            await self._record_end()

    async def _record_end(self) -> None:
        if self.ended_at is None:
            try:
                self.code, self.details = await self._call.code(), await self._call.details()
            except asyncio.CancelledError:
                self.code = grpc.StatusCode.CANCELLED
            self.ended_at = time.monotonic()
            self._changed.set()

    def of(self, kind: str) -> list:
        return [getattr(r.msg, kind) for r in self.received if r.kind == kind]

    def first(self, kind: str, after: float = 0.0) -> Received | None:
        return next((r for r in self.received if r.kind == kind and r.t >= after), None)

    async def wait(self, kind: str, count: int = 1, timeout: float = 60.0) -> list:
        async def until() -> None:
            while len(self.of(kind)) < count:
                if self.ended_at is not None:
                    raise AssertionError(
                        f"call ended ({self.code}: {self.details}) before {count} {kind}: "
                        f"{[r.kind for r in self.received]}"
                    )
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)
        return self.of(kind)

    async def wait_until(self, predicate, timeout: float = 60.0, what: str = "condition") -> None:
        async def until() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}: {[r.kind for r in self.received]}") from None

    async def ended(self, timeout: float = 60.0) -> tuple[grpc.StatusCode, str]:
        if self._reader is None:
            # A caller that did not read: its status waits behind the unread messages.
            self._reader = asyncio.create_task(self._read())
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.code, self.details


# ---------------------------------------------------------------- observations


def context_turn_ids(stack: LocalStack, session_id: str) -> list[str]:
    """Turn ids the context service (Redis) holds for the session, oldest first."""
    with grpc.insecure_channel(f"{stack.cfg.host}:{stack.cfg.context_port}") as ch:
        resp = context_pb2_grpc.ContextStoreStub(ch).GetContext(
            context_pb2.GetContextRequest(session=context_pb2.SessionRef(session_id=session_id)),
            timeout=5,
            wait_for_ready=True,
        )
    return [t.turn_id for t in resp.turns]


def scrape(url: str) -> dict[str, float]:
    """Sample name + sorted labels -> value."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name + "".join(f"|{k}={v}" for k, v in sorted(s.labels.items()))] = s.value
    return out


def metric(url: str, name: str, **labels: str) -> float:
    want = [f"{k}={v}" for k, v in labels.items()]
    return sum(
        v for k, v in scrape(url).items() if k.split("|")[0] == name and all(w in k.split("|")[1:] for w in want)
    )


def gateway_metrics_url(stack: LocalStack) -> str:
    return f"http://{stack.cfg.host}:{stack.cfg.gateway_metrics_port}/metrics"


def triton_metrics_url(stack: LocalStack) -> str:
    return f"http://127.0.0.1:{stack.cfg.triton_metrics_port}/metrics"


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
