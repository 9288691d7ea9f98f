"""`eval --served`: the test dialogues spoken into a running stack, scored like `eval`.

Each composed test dialogue becomes one call to the gateway's Converse API: its user clips
(the held-out callers, degraded as rendered) are streamed at real-time pace as 16 kHz PCM16,
with the caller's pause after each turn, so the gateway's VAD ends each turn, the codec
encodes it while it streams, Triton generates, and the reply audio comes back. The context
is what the stack itself stored (its own earlier replies, not the references). Each name
recall is also asked alone in a new session (the no-context control). The reply audio is
scored by the same `ReplyScorer` as the offline eval and summarized into the same report.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from telugu_s2s.training import synth
from telugu_s2s.training.evaluate import ReplyScorer, detail_row, dialogue_turns, names_and_replies, summarize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedEvalConfig:
    target: str = "127.0.0.1:50051"
    data_dir: Path = Path(".data")
    codec_dir: Path = Path("models/codec")
    split: str = "test"
    concurrency: int = 4  # calls at once (each at real-time pace)
    turn_stride: int = 1  # every n-th dialogue (1 = all)
    max_dialogues: int = 0
    api_key: str = ""
    tls_ca_file: str = ""
    progress: bool = True


def dialogues(rows: list[dict]) -> list[tuple[list[dict], bool]]:
    """(turns, with_context) calls: every composed dialogue, and each recall alone."""
    calls = []
    for turns in dialogue_turns(rows):
        calls.append((turns, True))
        calls += [([r], False) for r in turns if r["kind"] == "name_recall"]
    return calls


def _pcm16k(path: Path) -> np.ndarray:
    from telugu_s2s.common.audio import float_to_int16, resample

    return float_to_int16(resample(synth.read_audio(path), synth.SAMPLE_RATE, 16000).astype(np.float32))


async def _run(cfg: ServedEvalConfig, calls, scorer: ReplyScorer, sr: int) -> list[dict]:
    from telugu_s2s.client.caller import CallFailed, CallOptions, converse
    from telugu_s2s.common.audio import int16_to_float, resample

    gate = asyncio.Semaphore(max(1, cfg.concurrency))
    metadata = (("authorization", f"Bearer {cfg.api_key}"),) if cfg.api_key else ()
    # Replies are scored after every call has ended: scoring (DTW) on the event loop while other
    # calls stream would stall their real-time audio and inflate their latencies.
    heard: list[tuple[dict, bool, np.ndarray, dict[str, Any]]] = []
    done = 0

    async def one(turns: list[dict], with_ctx: bool) -> None:
        nonlocal done
        async with gate:
            opts = CallOptions(voice=turns[0]["voice"], realtime=True, metadata=metadata, tls_ca_file=cfg.tls_ca_file)
            utterances = [_pcm16k(Path(cfg.data_dir) / t["user_audio"]) for t in turns]
            call_errors: list[str] = []  # on every turn of the call
            try:
                result = await converse(cfg.target, utterances, opts)
                replies = result.turns
                if result.untrained_model:
                    call_errors.append("the stack serves untrained weights")
            except CallFailed as exc:
                replies, call_errors = [], [str(exc)]
            except (OSError, RuntimeError, TimeoutError) as exc:  # one broken call is one row of errors
                replies, call_errors = [], [f"{type(exc).__name__}: {exc}"]
            aligned = len(replies) == len(turns)
            if not aligned and not call_errors:
                call_errors.append(f"{len(replies)} replies for {len(turns)} turns")
            for i, r in enumerate(turns):
                turn = replies[i] if aligned else None
                pcm = turn.reply_pcm() if turn is not None else np.zeros(0, np.int16)
                audio = resample(int16_to_float(pcm), opts.output_rate, sr).astype(np.float32)
                errs = [f"{c}: {m}" for c, m in turn.errors] if turn is not None else []
                errs += call_errors
                extra: dict[str, Any] = {"errors": errs}
                if turn is not None and turn.latency:
                    extra["response_latency_ms"] = round(turn.latency.get("response_latency_ms", 0.0), 1)
                heard.append((r, with_ctx, audio, extra))
            done += 1
            if cfg.progress:
                log.info("served eval: %d/%d calls", done, len(calls))

    await asyncio.gather(*(one(t, w) for t, w in calls))
    return [
        detail_row(r, ctx, scorer.score(audio, r["reply_text"], r["voice"]), **extra) for r, ctx, audio, extra in heard
    ]


def eval_served(cfg: ServedEvalConfig) -> dict:
    from telugu_s2s.codec.checkpoint import load
    from telugu_s2s.training.encode import load_codes

    codec = load(Path(cfg.codec_dir))
    codec.model.set_target_bandwidth(codec.arch.default_bandwidth)
    k = codec.arch.codebooks_for(codec.arch.default_bandwidth)
    scorer = ReplyScorer(Path(cfg.data_dir), codec, load_codes(Path(cfg.data_dir) / "codes.npz"), k)
    rows = synth.read_jsonl(Path(cfg.data_dir) / "splits" / f"{cfg.split}.jsonl")
    calls = dialogues(rows)[:: max(1, cfg.turn_stride)]
    if cfg.max_dialogues:
        calls = calls[: cfg.max_dialogues]
    t0 = time.perf_counter()
    details = asyncio.run(_run(cfg, calls, scorer, codec.arch.sample_rate))
    details.sort(key=lambda d: (d["dialogue_id"], d["turn"], not d["with_context"]))
    latencies = [d["response_latency_ms"] for d in details if "response_latency_ms" in d]
    return {
        "split": cfg.split,
        "path": "served",
        "target": cfg.target,
        "held_out_callers": sorted({r["caller"] for r in rows}),
        **summarize(details, *names_and_replies()),
        "calls": len(calls),
        "turns_with_errors": sum(bool(d["errors"]) for d in details),
        "response_latency_ms_p50": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
        "response_latency_ms_p95": round(float(np.percentile(latencies, 95)), 1) if latencies else None,
        "codec": codec.weights_id,
        "seconds": round(time.perf_counter() - t0, 1),
        "details": details,
    }
