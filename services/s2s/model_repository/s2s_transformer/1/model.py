"""Triton Python backend for `s2s_transformer` (decoupled, continuous batching).

`execute` only validates each request and hands it to the background decode loop
(`telugu_s2s.s2s.serving.BatchingLoop`), which steps all active requests as one batch, sends
one response per FRAMES_PER_RESPONSE frames, checks cancellation before every step, and
always ends a request with a response carrying the final flag.
Configuration: config.pbtxt parameters, overridden by TS2S_S2S_* environment variables.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

# The package comes from the environment the stub embeds (the venv's site-packages, where
# `make venv` installs it in editable mode; the image installs it), never from a path edit.
from telugu_s2s.s2s import protocol as P

# services/s2s/model_repository/s2s_transformer/1/model.py -> <repo> (when served from a
# checkout; in an image the repository may sit at a shallow path such as /models/...)
_HERE = Path(__file__).resolve()
_REPO_ROOT = _HERE.parents[5] if len(_HERE.parents) > 5 else _HERE.parent

DEFAULT_CHECKPOINT_DIR = _REPO_ROOT / "models" / "s2s"
FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
# Latency buckets resolving 10-500 ms (seconds).
_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0]


def _failure(status, message: str):
    """A failed request's final response: its status code and message as outputs."""
    return pb_utils.InferenceResponse(output_tensors=[
        pb_utils.Tensor(P.OUT_STATUS, np.array([int(status)], np.int32)),
        pb_utils.Tensor(P.OUT_MESSAGE, np.array([message.encode()], dtype=np.object_)),
    ])


class _BackendLogHandler(logging.Handler):
    """Route the project's logging to Triton's log."""

    def emit(self, record: logging.LogRecord) -> None:
        msg = self.format(record)
        if record.levelno >= logging.ERROR:
            pb_utils.Logger.log_error(msg)
        elif record.levelno >= logging.WARNING:
            pb_utils.Logger.log_warn(msg)
        else:
            pb_utils.Logger.log_info(msg)


class _Metrics:
    """telugu_s2s_s2s_* metrics, exported on Triton's metrics port."""

    def __init__(self) -> None:
        # Families must outlive their metrics: keep references to both.
        F = pb_utils.MetricFamily
        self.families = {
            "generations": F(name="telugu_s2s_s2s_generations_total",
                             description="Generations by outcome (done, cancelled, error, rejected)",
                             kind=F.COUNTER),
            "frames": F(name="telugu_s2s_s2s_frames_total", description="Reply frames generated", kind=F.COUNTER),
            "active": F(name="telugu_s2s_s2s_active_generations",
                        description="Generations in the decode loop", kind=F.GAUGE),
            "step": F(name="telugu_s2s_s2s_decode_step_seconds", description="One batched decode step",
                      kind=F.HISTOGRAM),
            "first": F(name="telugu_s2s_s2s_first_frame_seconds",
                       description="Request received to first frames sent (queue + prefill + first steps)",
                       kind=F.HISTOGRAM),
        }
        self.generations = self.families["generations"]
        self._outcomes = {}
        self.frames = self.families["frames"].Metric(labels={})
        self.active = self.families["active"].Metric(labels={})
        self._active = -1
        self.step = self.families["step"].Metric(labels={}, buckets=_BUCKETS)
        self.first_frame = self.families["first"].Metric(labels={}, buckets=_BUCKETS)

    def set_active(self, n: int) -> None:
        # Every metric call is a round trip to the server process, and this one ran once per
        # decode step (a profile at 16 callers found the step's two metric calls at 7 % of the
        # model's time). The gauge is written when its value changes.
        if n != self._active:
            self.active.set(n)
            self._active = n

    def outcome(self, name: str) -> None:
        if name not in self._outcomes:
            self._outcomes[name] = self.generations.Metric(labels={"outcome": name})
        self._outcomes[name].increment(1)


class TritonPythonModel:
    def initialize(self, args):
        import torch

        from telugu_s2s.s2s.model import load_model
        from telugu_s2s.s2s.serving import BatchingLoop, ServingConfig

        root = logging.getLogger("telugu_s2s")
        if not root.handlers:
            root.addHandler(_BackendLogHandler())
            root.setLevel(logging.INFO)
        self.log = logging.getLogger("telugu_s2s.s2s.triton")

        model_config = json.loads(args["model_config"])
        if not pb_utils.using_decoupled_model_transaction_policy(model_config):
            raise pb_utils.TritonModelException("s2s_transformer must use the decoupled transaction policy")
        params = {k: v.get("string_value", "") for k, v in model_config.get("parameters", {}).items()}
        self.cfg = ServingConfig.from_sources(params, os.environ, DEFAULT_CHECKPOINT_DIR)
        torch.set_num_threads(self.cfg.torch_threads)
        self.loaded = load_model(
            self.cfg.checkpoint_dir, allow_random=self.cfg.allow_random_weights, device=self.cfg.device
        )
        mcfg = self.loaded.cfg
        if self.loaded.random:
            self.log.warning(
                "s2s_transformer SERVES RANDOM (UNTRAINED) WEIGHTS (TS2S_S2S_ALLOW_RANDOM_WEIGHTS=1): "
                "replies are noise, not speech"
            )
        self.log.info(
            "s2s_transformer loaded weights=%s params=%d config=%s device=%s threads=%d batching=%s",
            self.loaded.weights_id, self.loaded.model.num_parameters(), json.dumps(mcfg.to_dict()),
            self.cfg.device, self.cfg.torch_threads, self.cfg.continuous_batching,
        )
        self._warm_up()
        try:
            self.metrics = _Metrics()
        except Exception as exc:  # metrics are optional (e.g. disabled on the server)
            self.log.warning("custom metrics unavailable: %s", exc)
            self.metrics = None
        on_step = None
        if self.metrics is not None:
            def on_step(n: int, dt: float) -> None:
                self.metrics.step.observe(dt)
                self.metrics.set_active(n)
        self.loop = BatchingLoop(
            self.loaded.model, max_active=self.cfg.max_active, initial_slots=self.cfg.initial_slots,
            on_step=on_step, batched=self.cfg.continuous_batching,
        )
        self.loop.start()

    def _warm_up(self) -> None:
        from telugu_s2s.s2s.model import generate
        from telugu_s2s.s2s.protocol import GenerationParams

        mcfg = self.loaded.cfg
        user = np.zeros((mcfg.n_codebooks, 8), np.int64)
        for _ in generate(self.loaded.model, user, 0, params=GenerationParams(max_frames=2)):
            pass

    def execute(self, requests):
        from telugu_s2s.s2s.decoding import ReplyStream
        from telugu_s2s.s2s.model import build_prefix
        from telugu_s2s.s2s.serving import Overloaded, parse_request

        mcfg = self.loaded.cfg
        for request in requests:
            sender = request.get_response_sender()
            try:
                arrays = {}
                for name in P.INPUTS:
                    tensor = pb_utils.get_input_tensor_by_name(request, name)
                    arrays[name] = None if tensor is None else tensor.as_numpy()
                parsed = parse_request(arrays, mcfg.max_reply_frames)
                prefix = build_prefix(mcfg, parsed.user_codes, parsed.context_codes, parsed.context_segments)
                stream = ReplyStream(mcfg, prefix, parsed.voice_index, parsed.params, tag=request.request_id())
                job = self._job(stream, sender)
                self.loop.submit(job)
            except ValueError as exc:
                self._fail(sender, P.Status.INVALID_ARGUMENT, f"bad s2s request: {exc}")
            except Overloaded as exc:
                self._fail(sender, P.Status.UNAVAILABLE, str(exc), "rejected")
        return None

    def _fail(self, sender, status, message: str, outcome: str = "error") -> None:
        sender.send(_failure(status, message), flags=FINAL)
        if self.metrics is not None:
            self.metrics.outcome(outcome)

    def _job(self, stream, sender):
        from telugu_s2s.s2s.serving import Job

        metrics = self.metrics
        state = {"first": True}

        def emit(codes: np.ndarray, offset: int) -> None:
            out = pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor(P.OUT_CODES, np.ascontiguousarray(codes, dtype=np.int32)),
                pb_utils.Tensor(P.OUT_FRAME_OFFSET, np.array([offset], np.int32)),
            ])
            sender.send(out)
            if metrics is not None:
                metrics.frames.increment(codes.shape[1])
                if state["first"]:
                    metrics.first_frame.observe(time.monotonic() - job.submitted)
            state["first"] = False

        def finish(outcome: str, message: str | None) -> None:
            if metrics is not None:
                metrics.outcome(outcome)
                # The gauge is otherwise set only by decode steps: without this it would keep
                # its last value once the loop goes idle (e.g. after a cancellation).
                metrics.set_active(self.loop.active)
            if outcome == "error":
                sender.send(_failure(P.Status.INTERNAL, message or "s2s generation failed"), flags=FINAL)
            else:
                # done or cancelled: the final flag, always, on an end-of-reply response
                # (CODES [K, 0], FRAME_OFFSET = frames sent) that clients see without
                # opting into Triton's empty final responses.
                end = pb_utils.InferenceResponse(output_tensors=[
                    pb_utils.Tensor(P.OUT_CODES, np.zeros((stream.cfg.n_codebooks, 0), np.int32)),
                    pb_utils.Tensor(P.OUT_FRAME_OFFSET, np.array([stream.emitted], np.int32)),
                ])
                sender.send(end, flags=FINAL)

        job = Job(stream=stream, emit=emit, finish=finish, is_cancelled=sender.is_cancelled)
        return job

    def finalize(self):
        loop = getattr(self, "loop", None)
        if loop is not None:
            loop.stop(timeout=10.0)
