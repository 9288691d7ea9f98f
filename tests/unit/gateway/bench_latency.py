"""Gateway overhead benchmark against the in-process fakes (instant codec and model).

    python tests/unit/gateway/bench_latency.py [turns]

Each turn: one Telugu phrase (espeak-ng) + 700 ms of silence, sent in real time
(20 ms chunks, paced by the clock, as a phone would); the next turn starts after
ResponseDone. Prints median and p95 of the latency
breakdown the gateway reports in ResponseDone.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.conftest import PHRASES, LiveCall, audio_messages, config_message, silence, start_stack, stop_stack  # noqa: E402


def synth() -> np.ndarray:
    import subprocess
    import tempfile
    import wave

    import soxr

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.wav"
        subprocess.run(["espeak-ng", "-v", "te", "-w", str(path), PHRASES[0]], check=True)
        with wave.open(str(path)) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2")
            return soxr.resample(x, w.getframerate(), 16000).astype(np.int16)


async def main(turns: int) -> None:
    phrase = synth()
    stack = await start_stack()
    live = LiveCall(stack.stub)
    await live.send(config_message(barge_in=False))
    for i in range(turns):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for k, m in enumerate(audio_messages(np.concatenate([silence(200), phrase, silence(700)]))):
            await live.send(m)
            await asyncio.sleep(max(0.0, t0 + (k + 1) * 0.02 - loop.time()))
        await live.wait("response_done", i + 1)
    await live.finish()
    lat = [d.latency for d in live.of("response_done")]
    for name in ("response_latency_ms", "voice_to_voice_ms", "encode_flush_ms", "context_fetch_ms", "first_frame_ms", "first_decode_ms"):
        v = np.array([getattr(x, name) for x in lat])
        print(f"{name:22s} median {np.median(v):7.2f} ms   p95 {np.percentile(v, 95):7.2f} ms   (n={len(v)})")
    await stop_stack(stack)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
