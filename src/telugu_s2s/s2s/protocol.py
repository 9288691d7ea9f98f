"""The contract between the gateway and the `s2s_transformer` Triton model (no torch).

Inputs (all batch-less; `max_batch_size: 0`):
  USER_CODES        INT32 [K, T]   caller's codes, codebook-major
  VOICE_ID          INT32 [1]      speaker index (common.voices.VoiceSpec.speaker_index)
  CONTEXT_CODES     INT32 [K, C]   earlier turns, oldest first, concatenated along time:
                                   user_1, reply_1, user_2, reply_2, ... (C may be 0)
  CONTEXT_SEGMENTS  INT32 [S]      frame count of each segment in CONTEXT_CODES, in order
                                   (S = 2 x turns; sum = C). The model builds its own bounded
                                   context from these (budget in the checkpoint config).
  MAX_FRAMES        INT32 [1]      optional, stop after this many reply frames
  TEMPERATURE       FP32  [1]      optional, 0 = greedy
  TOP_K             INT32 [1]      optional, 0 = no top-k filter
  SEED              INT64 [1]      optional, sampling seed
  FRAMES_PER_RESPONSE INT32 [1]    optional, frames per streamed response (the first one's,
                                   with MAX_FRAMES_PER_RESPONSE)
  MAX_FRAMES_PER_RESPONSE INT32 [1] optional, 0 = every response has FRAMES_PER_RESPONSE
                                   frames; N = each full response doubles the next one's frames,
                                   up to N: the first frames go out at once, the rest in fewer,
                                   larger responses
Outputs (one response per group of frames; then an end-of-reply response with the final flag,
  CODES [K, 0] and FRAME_OFFSET = frames sent):
  CODES             INT32 [K, n]   the next n generated frames
  FRAME_OFFSET      INT32 [1]      index of the first of those frames in the reply
A failed request ends with a final response that carries, instead of those:
  STATUS            INT32 [1]      a `Status` (gRPC status code numbers)
  MESSAGE           BYTES [1]      what went wrong, UTF-8
(Triton's stream carries an error's text but not its code, so the code travels as an output.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

MODEL_NAME = "s2s_transformer"

USER_CODES = "USER_CODES"
VOICE_ID = "VOICE_ID"
CONTEXT_CODES = "CONTEXT_CODES"
CONTEXT_SEGMENTS = "CONTEXT_SEGMENTS"
MAX_FRAMES = "MAX_FRAMES"
TEMPERATURE = "TEMPERATURE"
TOP_K = "TOP_K"
SEED = "SEED"
FRAMES_PER_RESPONSE = "FRAMES_PER_RESPONSE"
MAX_FRAMES_PER_RESPONSE = "MAX_FRAMES_PER_RESPONSE"
# Every input, in the order above: what the Triton model reads from a request.
INPUTS = (
    USER_CODES,
    VOICE_ID,
    CONTEXT_CODES,
    CONTEXT_SEGMENTS,
    MAX_FRAMES,
    TEMPERATURE,
    TOP_K,
    SEED,
    FRAMES_PER_RESPONSE,
    MAX_FRAMES_PER_RESPONSE,
)

OUT_CODES = "CODES"
OUT_FRAME_OFFSET = "FRAME_OFFSET"
OUT_STATUS = "STATUS"
OUT_MESSAGE = "MESSAGE"


class Status(IntEnum):
    """Why a request failed (the numbers are gRPC's status codes)."""

    INVALID_ARGUMENT = 3  # the request itself is wrong: sending it again fails again
    INTERNAL = 13  # generation failed
    UNAVAILABLE = 14  # overloaded or stopping: another try may succeed


@dataclass(frozen=True)
class GenerationParams:
    max_frames: int = 600
    temperature: float = 0.0
    top_k: int = 0
    seed: int = 0
    frames_per_response: int = 2
    max_frames_per_response: int = 0  # 0: fixed blocks; N: blocks double up to N frames


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str
    user_codes: np.ndarray  # int [K, T]
    voice_index: int
    context_codes: np.ndarray  # int [K, C]
    context_segments: np.ndarray  # int [S]
    params: GenerationParams = field(default_factory=GenerationParams)


def context_from_turns(turns: list[tuple[np.ndarray, np.ndarray]], n_codebooks: int) -> tuple[np.ndarray, np.ndarray]:
    """(user, reply) code pairs, oldest first -> (CONTEXT_CODES, CONTEXT_SEGMENTS)."""
    blocks: list[np.ndarray] = []
    segments: list[int] = []
    for user, reply in turns:
        for block in (user, reply):
            block = np.asarray(block, dtype=np.int32).reshape(n_codebooks, -1)
            blocks.append(block)
            segments.append(block.shape[1])
    codes = np.concatenate(blocks, axis=1) if blocks else np.zeros((n_codebooks, 0), np.int32)
    return codes.astype(np.int32), np.asarray(segments, dtype=np.int32)
