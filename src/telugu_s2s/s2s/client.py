"""Async client for the `s2s_transformer` Triton model (no torch; tritonclient.grpc.aio).

    client = TritonS2SClient("localhost:8001")
    async for block in client.generate(request):   # int32 [K, n] blocks, in order
        ...
    # leaving the loop early (break / aclose() / task cancellation) cancels the Triton request
    await client.close()

One gRPC ModelStreamInfer stream per generation. The model ends every reply with an
end-of-reply response (CODES [K, 0], carrying Triton's final flag), so the end is explicit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from telugu_s2s.s2s import protocol as P
from telugu_s2s.s2s.protocol import GenerationRequest

# tritonclient's own message-size options, plus a reconnect backoff capped at 1 s (gRPC's
# default grows to 120 s, so a restarted Triton would stay unused for minutes), and
# round_robin over every address of the target (Triton replicas, see gateway/channels.py).
CHANNEL_ARGS = [
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.max_receive_message_length", 2**31 - 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.dns_min_time_between_resolutions_ms", 5000),
]


class S2SUnavailable(RuntimeError):
    """The Triton server is down, the model is not ready, or generation failed on the server."""


class S2SBadRequest(S2SUnavailable, ValueError):
    """The server rejected the request's inputs (the message says what to fix).

    A subclass of S2SUnavailable, so a caller that only handles that still ends the turn
    cleanly; catch S2SBadRequest first to report it as the caller's error."""


def _tensor(name: str, array: np.ndarray, dtype: str) -> grpcclient.InferInput:
    t = grpcclient.InferInput(name, list(array.shape), dtype)
    t.set_data_from_numpy(array)
    return t


def build_inputs(req: GenerationRequest) -> list[grpcclient.InferInput]:
    """GenerationRequest -> Triton inputs (protocol.py)."""
    user = np.ascontiguousarray(req.user_codes, dtype=np.int32)
    if user.ndim != 2:
        raise S2SBadRequest(f"user_codes must be 2-D [n_codebooks, n_frames], got shape {user.shape}")
    p = req.params
    inputs = [
        _tensor(P.USER_CODES, user, "INT32"),
        _tensor(P.VOICE_ID, np.array([req.voice_index], np.int32), "INT32"),
        _tensor(P.MAX_FRAMES, np.array([p.max_frames], np.int32), "INT32"),
        _tensor(P.TEMPERATURE, np.array([p.temperature], np.float32), "FP32"),
        _tensor(P.TOP_K, np.array([p.top_k], np.int32), "INT32"),
        _tensor(P.SEED, np.array([p.seed], np.int64), "INT64"),
        _tensor(P.FRAMES_PER_RESPONSE, np.array([p.frames_per_response], np.int32), "INT32"),
        _tensor(P.MAX_FRAMES_PER_RESPONSE, np.array([p.max_frames_per_response], np.int32), "INT32"),
    ]
    segments = np.ascontiguousarray(np.asarray(req.context_segments).reshape(-1), dtype=np.int32)
    ctx = np.asarray(req.context_codes)
    if segments.size and ctx.size:
        ctx = np.ascontiguousarray(ctx, dtype=np.int32)
        inputs.append(_tensor(P.CONTEXT_CODES, ctx, "INT32"))
        inputs.append(_tensor(P.CONTEXT_SEGMENTS, segments, "INT32"))
    return inputs


class TritonS2SClient:
    def __init__(self, target: str, model_name: str = P.MODEL_NAME) -> None:
        self.target = target
        self.model_name = model_name
        self._client: grpcclient.InferenceServerClient | None = None

    def _get(self) -> grpcclient.InferenceServerClient:
        if self._client is None:  # created on first use, inside the running event loop
            self._client = grpcclient.InferenceServerClient(url=self.target, channel_args=CHANNEL_ARGS)
        return self._client

    async def ready(self) -> bool:
        """True when the server is up and the model is loaded."""
        try:
            client = self._get()
            return bool(
                await client.is_server_ready(client_timeout=2.0)
                and await client.is_model_ready(self.model_name, client_timeout=2.0)
            )
        except (InferenceServerException, grpc.RpcError, OSError):
            return False

    def generate(self, req: GenerationRequest) -> AsyncIterator[np.ndarray]:
        """Stream the reply as int32 [K, n] blocks. Raises S2SUnavailable / S2SBadRequest."""
        inputs = build_inputs(req)  # input errors raise here, before any I/O
        return self._stream(req.request_id, inputs)

    async def _stream(self, request_id: str, inputs: list) -> AsyncIterator[np.ndarray]:
        done = asyncio.Event()

        async def requests():
            yield {
                "model_name": self.model_name,
                "inputs": inputs,
                "request_id": request_id,
            }
            await done.wait()  # keep the stream open until the reply is complete

        finished = False
        try:
            call = self._get().stream_infer(requests())
        except (InferenceServerException, grpc.RpcError) as exc:
            raise S2SUnavailable(f"s2s model at {self.target} unavailable: {exc}") from exc
        try:
            while True:
                try:
                    result, error = await call.__anext__()
                except StopAsyncIteration:
                    raise S2SUnavailable("s2s stream ended before the final response") from None
                except grpc.RpcError as exc:
                    detail = exc.details() if hasattr(exc, "details") else str(exc)
                    raise S2SUnavailable(f"s2s model at {self.target} unavailable: {detail}") from exc
                if error is not None:  # Triton's own (no model response): no code comes with it
                    finished = True
                    message = str(error.message() if hasattr(error, "message") else error)
                    raise S2SUnavailable(f"s2s generation failed: {message}")
                status = result.as_numpy(P.OUT_STATUS)
                if status is not None:  # the model ended this request with a failure
                    finished = True
                    raise _failure(int(status[0]), result.as_numpy(P.OUT_MESSAGE))
                codes = result.as_numpy(P.OUT_CODES)
                param = result.get_response().parameters.get("triton_final_response")
                final = param is not None and param.bool_param
                if codes is not None and codes.size:
                    yield codes.astype(np.int32, copy=False)
                elif codes is not None or final:  # the end-of-reply response: CODES [K, 0]
                    finished = True
                    return
        finally:
            done.set()
            if not finished:
                call.cancel()  # early exit / cancellation: Triton cancels the request

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()


def _failure(status: int, message: np.ndarray | None) -> Exception:
    """The exception for a model's failure response, chosen by its status code."""
    raw = message.reshape(-1)[0] if message is not None and message.size else b""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if status == P.Status.INVALID_ARGUMENT:
        return S2SBadRequest(text)
    name = P.Status(status).name if status in set(P.Status) else str(status)
    return S2SUnavailable(f"s2s generation failed ({name}): {text}")
