"""The input pipeline of one call: caller audio -> turns, each with its codec Encode stream.

    chunk -> check (10-200 ms, whole samples) -> decode (PCM16 / G.711)
          -> resample to the codec rate -> AudioHistory (prefix padding)
          -> resample to the VAD rate   -> Segmenter (speech start / end; the end decided by
                                           the end-of-turn model or the silence timer; with
                                           the model, "likely end" / "resumed" in between)
    from speech start (minus the prefix padding) the history streams into an Encode stream,
    in pushes of at least `push_ms` (a speech start, a likely end and the end push at once);
    at speech end that stream is handed over with the turn.

It reports through `InputHooks`, so the turn state machine (gateway.call) decides what a
start or an end of speech means; this module knows nothing of replies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import grpc

from telugu_s2s.common import audio as audio_mod
from telugu_s2s.common.codec_info import CodecInfo
from telugu_s2s.gateway.buffers import AudioHistory
from telugu_s2s.gateway.codec_client import CodecClient, EncodeStream
from telugu_s2s.gateway.errors import CallError
from telugu_s2s.gateway.events import CallSettings
from telugu_s2s.gateway.vad import VAD_RATE, LikelyEnd, Segmenter, SpeechEnd, SpeechStart
from telugu_s2s.turn.detector import TurnDetector
from telugu_s2s.turn.model import TurnModel

MIN_CHUNK_MS = 10  # the proto's chunk rule: 10..200 ms of whole samples
MAX_CHUNK_MS = 200


@dataclass(frozen=True)
class TurnDefaults:
    """The gateway's end-of-turn model (None: it has none, so only SILENCE), the mode a call
    gets when its SessionConfig leaves turn_detection.mode unset, and the P(finished) at which
    a reply is prepared ahead of the decision (0 = never)."""

    model: TurnModel | None = None
    mode: str = "silence"
    preempt_at: float = 0.0

    def check(self, settings: CallSettings) -> None:
        """CallError if the call asks for a model this gateway does not have."""
        if (settings.turn.mode or self.mode) == "turn_model" and self.model is None:
            raise CallError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "this gateway runs without an end-of-turn model; set turn_detection.mode to SILENCE",
            )

    def detector(self, settings: CallSettings) -> TurnDetector | None:
        """The call's detector; None for the silence timer."""
        self.check(settings)
        if (settings.turn.mode or self.mode) == "silence" or self.model is None:
            return None
        return TurnDetector(self.model, settings.turn.eagerness, settings.turn.max_wait_ms)


class InputHooks(Protocol):
    def on_speech_start(self, ev: SpeechStart) -> None:
        """Speech began (its encoder opens right after)."""

    def admit_turn(self) -> None:
        """Speech ended: raise CallError if this call may not take another turn."""

    def on_turn(self, ev: SpeechEnd, encoder: EncodeStream, t_decided: float) -> None:
        """A turn ended (decided at perf_counter `t_decided`); `encoder` holds all of its audio
        (the hook finishes or cancels it)."""

    def on_likely_end(self, ev: LikelyEnd, encoder: EncodeStream) -> None:
        """The turn may be ending at `ev.audio_end_ms`; `encoder` still streams it (read it
        with `prefix`, never finish it: the turn may go on)."""

    def on_resumed(self) -> None:
        """The caller spoke again after on_likely_end: the turn goes on."""


class InputPipeline:
    def __init__(
        self,
        settings: CallSettings,
        info: CodecInfo,
        codec: CodecClient,
        hooks: InputHooks,
        turn: TurnDefaults,
        push_ms: float = 0.0,
    ) -> None:
        self.format = settings.input_format
        self._info = info
        self._codec = codec
        self._hooks = hooks
        in_rate = self.format.sample_rate_hz
        self._to_vad = audio_mod.StreamResampler(in_rate, VAD_RATE)
        self._to_codec = audio_mod.StreamResampler(in_rate, info.sample_rate_hz)
        self._segmenter = Segmenter(settings.vad, turn.detector(settings), turn.preempt_at)
        keep_ms = settings.vad.prefix_padding_ms + settings.vad.start_window_ms + MAX_CHUNK_MS + 500
        self._history = AudioHistory(info.sample_rate_hz, info.sample_rate_hz * keep_ms // 1000)
        self._encoder: EncodeStream | None = None
        self._encoded_upto = 0
        self._push_samples = round(push_ms * info.sample_rate_hz / 1000)

    async def feed(self, data: bytes) -> None:
        """One caller chunk. CallError(INVALID_ARGUMENT) for a chunk that breaks the rules."""
        samples = self._decode(data)
        keep_from = self._encoded_upto if self._encoder is not None else None
        self._history.append(self._to_codec.process(samples), keep_from=keep_from)
        for ev in self._segmenter.feed(self._to_vad.process(samples)):
            if isinstance(ev, SpeechStart):
                await self._start(ev)
            elif isinstance(ev, SpeechEnd):
                await self._end(ev)
            elif isinstance(ev, LikelyEnd):
                assert self._encoder is not None
                await self._pump()  # the codes of this silence's start are on their way
                self._hooks.on_likely_end(ev, self._encoder)
            else:
                self._hooks.on_resumed()
        if self._encoder is not None and self._history.end - self._encoded_upto >= self._push_samples:
            await self._pump()

    async def force_end(self) -> bool:
        """End the speech in progress now (COMMIT_TURN, END_OF_INPUT); False if there is none."""
        ev = self._segmenter.force_end()
        if ev is None:
            return False
        await self._end(ev)
        return True

    async def close(self) -> None:
        encoder, self._encoder = self._encoder, None
        if encoder is not None:
            await encoder.cancel()

    def _decode(self, data: bytes):
        fmt = self.format
        ms = fmt.duration_ms(len(data))
        if not data:
            raise CallError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"empty audio chunk; send {MIN_CHUNK_MS}-{MAX_CHUNK_MS} ms of audio per chunk",
            )
        if not MIN_CHUNK_MS <= ms <= MAX_CHUNK_MS:
            raise CallError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"audio chunk of {ms:g} ms ({len(data)} bytes of {fmt.encoding.name} at {fmt.sample_rate_hz} Hz) "
                f"is too {'long' if ms > MAX_CHUNK_MS else 'short'}; send {MIN_CHUNK_MS}-{MAX_CHUNK_MS} ms per chunk",
            )
        try:
            return audio_mod.decode_bytes(data, fmt)
        except audio_mod.AudioFormatError as exc:
            raise CallError(
                grpc.StatusCode.INVALID_ARGUMENT, f"{exc}; send whole 16-bit samples in each chunk"
            ) from exc

    async def _pump(self, upto: int | None = None) -> None:
        assert self._encoder is not None
        samples, self._encoded_upto = self._history.slice(self._encoded_upto, upto)
        await self._encoder.push(samples)

    async def _start(self, ev: SpeechStart) -> None:
        self._hooks.on_speech_start(ev)
        self._encoder = self._codec.encoder(self._info)
        self._encoded_upto = self._history.index_at_ms(ev.audio_start_ms)
        await self._pump()

    async def _end(self, ev: SpeechEnd) -> None:
        t_decided = time.perf_counter()
        assert self._encoder is not None
        self._hooks.admit_turn()
        await self._pump(self._history.index_at_ms(ev.decided_at_ms))
        encoder, self._encoder = self._encoder, None
        self._hooks.on_turn(ev, encoder, t_decided)
