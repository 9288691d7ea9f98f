"""Serving side of the S2S model, independent of Triton (the Triton model.py is a thin shell).

* `ServingConfig`: the one config object, built once from the model's config.pbtxt
  parameters and TS2S_S2S_* environment variables (environment wins).
* `parse_request`: Triton input arrays -> validated generation inputs (clear ValueErrors).
* `BatchingLoop`: continuous batching. One background thread owns the model and a
  `DecodeEngine`; every step advances all active requests as ONE batched forward. New
  requests are prefilled and join between steps; cancelled ones leave before the next step.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from telugu_s2s.s2s import protocol as P

if TYPE_CHECKING:  # torch stays out of this module's import (the Triton model imports it first)
    from telugu_s2s.s2s.decoding import DecodeEngine, ReplyStream
from telugu_s2s.s2s.protocol import GenerationParams

log = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ServingConfig:
    checkpoint_dir: Path
    allow_random_weights: bool = False
    device: str = "cpu"
    torch_threads: int = 1
    max_active: int = 64  # concurrent generations; more are refused with UNAVAILABLE
    initial_slots: int = 8
    continuous_batching: bool = True  # False: step requests one by one (for comparison)

    @classmethod
    def from_sources(
        cls, parameters: Mapping[str, str], env: Mapping[str, str], default_checkpoint_dir: Path
    ) -> ServingConfig:
        def pick(env_key: str, param_key: str, default: str) -> str:
            value = env.get(env_key) or parameters.get(param_key) or ""
            return value.strip() or default

        ckpt = pick("TS2S_S2S_CHECKPOINT_DIR", "checkpoint_dir", str(default_checkpoint_dir))
        try:
            threads = int(pick("TS2S_S2S_TORCH_THREADS", "torch_threads", "1"))
            max_active = int(pick("TS2S_S2S_MAX_ACTIVE", "max_active", "64"))
        except ValueError as exc:
            raise ValueError(f"s2s config: torch_threads / max_active must be integers ({exc})") from exc
        device = pick("TS2S_S2S_DEVICE", "device", "cpu")
        if device != "cpu" and not device.startswith("cuda"):
            raise ValueError(f"TS2S_S2S_DEVICE must be cpu or cuda[:n], got {device!r}")
        return cls(
            checkpoint_dir=Path(ckpt),
            allow_random_weights=pick("TS2S_S2S_ALLOW_RANDOM_WEIGHTS", "allow_random_weights", "0").lower() in _TRUE,
            device=device,
            torch_threads=max(1, threads),
            max_active=max(1, max_active),
            continuous_batching=pick("TS2S_S2S_CONTINUOUS_BATCHING", "continuous_batching", "1").lower() in _TRUE,
        )


@dataclass
class ParsedRequest:
    user_codes: np.ndarray
    voice_index: int
    context_codes: np.ndarray | None
    context_segments: np.ndarray | None
    params: GenerationParams


def _scalar(arrays: Mapping[str, np.ndarray | None], name: str, cast, default):
    value = arrays.get(name)
    if value is None:
        return default
    value = np.asarray(value).reshape(-1)
    if value.size != 1:
        raise ValueError(f"{name} must hold exactly one value, got {value.size}")
    return cast(value[0])


def parse_request(arrays: Mapping[str, np.ndarray | None], max_reply_frames: int) -> ParsedRequest:
    """Validate the Triton inputs (protocol.py) and apply defaults."""
    user = arrays.get(P.USER_CODES)
    if user is None:
        raise ValueError(f"missing required input {P.USER_CODES} (INT32 [K, T])")
    user = np.asarray(user)
    if user.ndim != 2 or user.shape[1] == 0:
        raise ValueError(f"{P.USER_CODES} must be [n_codebooks, n_frames] with n_frames > 0, got {user.shape}")
    if arrays.get(P.VOICE_ID) is None:
        raise ValueError(f"missing required input {P.VOICE_ID} (INT32 [1])")
    voice = _scalar(arrays, P.VOICE_ID, int, 0)
    ctx = arrays.get(P.CONTEXT_CODES)
    seg = arrays.get(P.CONTEXT_SEGMENTS)
    if (ctx is None) != (seg is None):
        raise ValueError(f"send both {P.CONTEXT_CODES} and {P.CONTEXT_SEGMENTS}, or neither")
    defaults = GenerationParams()
    params = GenerationParams(
        max_frames=_scalar(arrays, P.MAX_FRAMES, int, max_reply_frames),
        temperature=_scalar(arrays, P.TEMPERATURE, float, defaults.temperature),
        top_k=_scalar(arrays, P.TOP_K, int, defaults.top_k),
        seed=_scalar(arrays, P.SEED, int, defaults.seed),
        frames_per_response=_scalar(arrays, P.FRAMES_PER_RESPONSE, int, defaults.frames_per_response),
        max_frames_per_response=_scalar(arrays, P.MAX_FRAMES_PER_RESPONSE, int, defaults.max_frames_per_response),
    )
    return ParsedRequest(user, voice, ctx, seg, params)


class Overloaded(RuntimeError):
    """More concurrent generations than max_active."""


@dataclass(eq=False)
class Job:
    """One request in the loop. Callbacks run on the loop thread."""

    stream: ReplyStream
    emit: Callable[[np.ndarray, int], None]  # (codes int32 [K, n], frame offset)
    finish: Callable[[str, str | None], None]  # (outcome "done"|"cancelled"|"error", error message)
    is_cancelled: Callable[[], bool]
    submitted: float = field(default_factory=time.monotonic)
    finished: bool = False


@dataclass
class LoopStats:
    steps: int = 0
    step_seconds: float = 0.0  # batched forward + sampling
    prefill_seconds: float = 0.0
    cancel_check_seconds: float = 0.0
    emit_seconds: float = 0.0  # sending responses
    batch_sizes: int = 0
    frames: int = 0
    completed: int = 0
    cancelled: int = 0
    failed: int = 0


class _Unbatched:
    """DecodeEngine-like: one engine per stream, stepped one after another (no batching).
    Only for measuring what continuous batching buys."""

    def __init__(self, model) -> None:
        self.model = model
        self.engines: dict[int, DecodeEngine] = {}

    def __len__(self) -> int:
        return len(self.engines)

    def add(self, stream) -> None:
        from telugu_s2s.s2s.decoding import DecodeEngine

        engine = DecodeEngine(self.model, initial_slots=1)
        engine.add(stream)
        if len(engine):
            self.engines[id(stream)] = engine

    def step(self) -> None:
        for key, engine in list(self.engines.items()):
            engine.step()
            if not len(engine):
                del self.engines[key]

    def remove(self, stream) -> None:
        engine = self.engines.pop(id(stream), None)
        if engine is not None:
            engine.remove(stream)


class BatchingLoop:
    """Continuous batching over a DecodeEngine on one background thread."""

    def __init__(
        self,
        model,
        max_active: int = 64,
        initial_slots: int = 8,
        on_step: Callable[[int, float], None] | None = None,
        batched: bool = True,
    ) -> None:
        from telugu_s2s.s2s.decoding import DecodeEngine

        self._fresh_engine = lambda: DecodeEngine(model, initial_slots=initial_slots) if batched else _Unbatched(model)
        self.engine = self._fresh_engine()
        self.max_active = max_active
        self.on_step = on_step
        self.stats = LoopStats()
        self._inbox: queue.Queue[Job | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="s2s-decode-loop", daemon=True)
        self._jobs: list[Job] = []

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._pending >= self.max_active:
                raise Overloaded(f"s2s model is at its limit of {self.max_active} concurrent generations; retry later")
            self._pending += 1
        self._inbox.put(job)

    @property
    def active(self) -> int:
        return self._pending

    def stop(self, timeout: float = 10.0) -> None:
        self._inbox.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)
        st = self.stats
        log.info(
            "decode loop stopped: %d steps (mean batch %.2f, %.2f ms/step), prefill %.1f s, "
            "cancel checks %.1f s, emit %.1f s, %d frames, %d done, %d cancelled, %d failed",
            st.steps,
            st.batch_sizes / max(st.steps, 1),
            1000 * st.step_seconds / max(st.steps, 1),
            st.prefill_seconds,
            st.cancel_check_seconds,
            st.emit_seconds,
            st.frames,
            st.completed,
            st.cancelled,
            st.failed,
        )

    # -- loop thread
    def _finish(self, job: Job, outcome: str, message: str | None = None) -> None:
        if job.finished:
            return
        job.finished = True
        with self._lock:
            self._pending -= 1
        if outcome == "done":
            self.stats.completed += 1
        elif outcome == "cancelled":
            self.stats.cancelled += 1
        else:
            self.stats.failed += 1
        try:
            job.finish(outcome, message)
        except Exception:  # a broken client callback must not stop the loop
            log.exception("finish callback failed")

    def _flush(self, job: Job) -> None:
        for block in job.stream.pop_blocks():
            offset = job.stream.emitted - block.shape[1]
            self.stats.frames += block.shape[1]
            job.emit(block, offset)

    def _cancelled(self, job: Job) -> bool:
        """Ask the job whether it was cancelled; a failing check ends the job with an error."""
        try:
            cancelled = job.is_cancelled()
        except Exception as exc:
            log.exception("cancellation check failed")
            self.engine.remove(job.stream)
            self._finish(job, "error", f"s2s cancellation check failed: {exc}")
            return True
        if cancelled:
            self.engine.remove(job.stream)
            self._finish(job, "cancelled")
        return cancelled

    def _admit(self, job: Job) -> None:
        if self._cancelled(job):
            return
        t0 = time.perf_counter()
        try:
            self.engine.add(job.stream)
            self.stats.prefill_seconds += time.perf_counter() - t0
        except Exception as exc:
            log.exception("prefill failed")
            self._finish(job, "error", f"s2s prefill failed: {exc}")
            return
        self._jobs.append(job)

    def _run(self) -> None:
        stopping = False
        while True:
            try:
                stopping = self._iteration(stopping)
            except Exception as exc:  # never let the loop die: fail what is in flight, go on
                log.exception("decode loop iteration failed")
                for job in self._jobs:
                    try:
                        self.engine.remove(job.stream)
                    except Exception:  # noqa: BLE001 - the job ends with the error below either way
                        pass
                    self._finish(job, "error", f"s2s decode loop failed: {exc}")
                self._jobs = []
                self.engine = self._fresh_engine()
            if stopping and not self._jobs:
                return

    def _iteration(self, stopping: bool) -> bool:
        """One admit / cancel-check / step / send round; returns the stopping flag."""
        # Admit at most one new request (one prefill) per step, so a burst of arrivals
        # does not stall the streams already playing; block only when idle.
        try:
            item = self._inbox.get(block=not self._jobs and not stopping)
            if item is None:
                stopping = True
            else:
                self._admit(item)
        except queue.Empty:
            pass
        if stopping:  # shutting down: end everything in flight and everything queued
            while True:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    self._finish(item, "error", "s2s model is shutting down")
            for job in self._jobs:
                self.engine.remove(job.stream)
                self._finish(job, "error", "s2s model is shutting down")
            self._jobs.clear()
            return True
        # Cancellation is checked before every step.
        t0 = time.perf_counter()
        for job in self._jobs:
            self._cancelled(job)
        self.stats.cancel_check_seconds += time.perf_counter() - t0
        if len(self.engine):
            n = len(self.engine)
            t0 = time.perf_counter()
            try:
                self.engine.step()
            except Exception as exc:
                log.exception("decode step failed")
                for job in self._jobs:
                    self._finish(job, "error", f"s2s decode step failed: {exc}")
                self.engine = self._fresh_engine()  # its state may be inconsistent now
            dt = time.perf_counter() - t0
            self.stats.steps += 1
            self.stats.step_seconds += dt
            self.stats.batch_sizes += n
            if self.on_step is not None:
                try:
                    self.on_step(n, dt)
                except Exception:
                    log.exception("step observer failed")
        t0 = time.perf_counter()
        for job in self._jobs:
            if job.finished:
                continue
            try:
                self._flush(job)
            except Exception as exc:
                log.exception("sending a response failed")
                self.engine.remove(job.stream)
                self._finish(job, "error", f"sending a response failed: {exc}")
                continue
            if job.stream.done:
                self._finish(job, "done")
        self.stats.emit_seconds += time.perf_counter() - t0
        self._jobs = [j for j in self._jobs if not j.finished]
        return stopping
