"""`telugu-s2s bench`: N concurrent callers against a running stack, with latency percentiles.

Each caller plays real Telugu question audio in real time, leaves natural pauses, takes M
turns, and (with --barge-in-share) talks over a share of the replies. Response latency and
voice-to-voice come from the gateway's per-turn `ResponseDone`; barge-in stop is measured on
the caller's side, from the `SpeechStarted` event that interrupts a reply to the last reply
chunk received. CPU use of each service process is read from /proc before and after.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from telugu_s2s.client import codec_throughput
from telugu_s2s.client.caller import INPUT_RATE, CallFailed, CallOptions, converse
from telugu_s2s.client.wav import read_wav_as
from telugu_s2s.common.audio import G711_RATE as TELEPHONE_RATE
from telugu_s2s.common.audio import Encoding

SERVICE_PATTERNS = {
    "gateway": "telugu_s2s.gateway",
    "codec": "telugu_s2s.codec",
    "context": "telugu_s2s.context",
    "triton": "tritonserver",
    "triton_python_stub": "triton_python_backend_stub",
    "redis": "redis-server",
}


@dataclass
class BenchConfig:
    target: str
    sessions: int
    turns: int
    examples: list[Path]
    barge_in_share: float = 0.0
    seed: int = 0
    voice: str = ""
    ramp_s: float = 1.0
    api_key: str = ""
    pids: dict[str, list[int]] | None = None
    turn_detection: str = ""  # "" = the gateway's default; "silence" | "turn_model"
    eagerness: str = ""
    telephone: bool = False  # callers send 8 kHz mu-law and take 8 kHz audio back
    nice: int = 0  # the client's niceness while it runs (os.nice value; reported)

    @property
    def line_rate(self) -> int:
        return TELEPHONE_RATE if self.telephone else INPUT_RATE


@dataclass
class BenchResult:
    response_latency_ms: list[float] = field(default_factory=list)
    voice_to_voice_ms: list[float] = field(default_factory=list)
    # Measured by the caller: end of its last audible sample -> first reply audio received.
    caller_voice_to_voice_ms: list[float] = field(default_factory=list)
    barge_in_stop_ms: list[float] = field(default_factory=list)
    # |ResponseInterrupted.played_ms - what a real-time player had played| at each barge-in.
    played_ms_error_ms: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)
    turns_ok: int = 0
    turns_interrupted: int = 0
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "n": 0}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(arr, 50)), 1),
        "p95": round(float(np.percentile(arr, 95)), 1),
        "p99": round(float(np.percentile(arr, 99)), 1),
        "mean": round(float(arr.mean()), 1),
        "n": int(arr.size),
    }


def _cpu_of(pid: int | str) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_cpu_seconds(pids: dict[str, list[int]] | None = None) -> dict[str, float]:
    """CPU seconds (user+system) used so far by each service's processes, by name, and by this
    benchmark client itself ("bench_client": it shares the cores with the stack).

    With `pids` (the stack's own pid file) only those processes count; otherwise every
    process whose command line names a service does (several stacks would then mix).
    """
    own = os.times()
    out: dict[str, float] = {"bench_client": own.user + own.system}
    if pids:
        for name, plist in pids.items():
            for pid in plist:
                try:
                    out[name] = out.get(name, 0.0) + _cpu_of(pid)
                except (OSError, ValueError, IndexError):
                    pass
        return out
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        for name, pattern in SERVICE_PATTERNS.items():
            if pattern in cmd:
                fields = stat[stat.rindex(")") + 2 :].split()
                out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                break
    return out


async def _caller(idx: int, cfg: BenchConfig, audio: list[np.ndarray], res: BenchResult, progress) -> None:
    rng = random.Random(cfg.seed * 1000 + idx)
    await asyncio.sleep(rng.uniform(0, cfg.ramp_s))
    utterances = [audio[(idx + t) % len(audio)] for t in range(cfg.turns)]
    barge = tuple(t for t in range(1, cfg.turns) if rng.random() < cfg.barge_in_share)
    metadata = (("authorization", f"Bearer {cfg.api_key}"),) if cfg.api_key else ()
    opts = CallOptions(
        voice=cfg.voice or ("arjun", "ravi", "priya", "lakshmi")[idx % 4],
        realtime=True,
        pause_ms=rng.choice((400, 600, 800)),
        barge_in_after_ms=rng.choice((300, 500, 700)),
        barge_in_on=barge,
        metadata=metadata,
        turn_detection=cfg.turn_detection,
        eagerness=cfg.eagerness,
        input_encoding=Encoding.MULAW if cfg.telephone else Encoding.PCM16,
        input_rate=cfg.line_rate,
        output_rate=cfg.line_rate,
    )
    try:
        call = await converse(cfg.target, utterances, opts)
    except CallFailed as exc:
        res.errors.append(f"caller {idx}: {exc}")
        progress(cfg.turns)
        return
    for code, msg in call.errors:
        res.errors.append(f"caller {idx}: {code}: {msg}")
    for turn in call.turns:
        for code, msg in turn.errors:
            res.errors.append(f"caller {idx} turn {turn.turn_id}: {code}: {msg}")
        if turn.interrupted:
            res.turns_interrupted += 1
            if turn.interrupted_at is not None:
                last = turn.last_audio_at or turn.interrupted_at
                res.barge_in_stop_ms.append(max(0.0, (last - turn.interrupted_at) * 1000.0))
                player_ms = turn.player_ms_at_interrupt
                if player_ms is not None:
                    res.played_ms_error_ms.append(abs(turn.played_ms - player_ms))
        if turn.latency:
            res.turns_ok += 1
            res.response_latency_ms.append(turn.latency["response_latency_ms"])
            res.voice_to_voice_ms.append(turn.latency["voice_to_voice_ms"])
            if turn.caller_voice_to_voice_ms is not None:
                res.caller_voice_to_voice_ms.append(turn.caller_voice_to_voice_ms)
            for k, v in turn.latency.items():
                if k not in ("response_latency_ms", "voice_to_voice_ms"):
                    res.stages.setdefault(k, []).append(v)
    progress(cfg.turns)


async def run_bench(cfg: BenchConfig) -> BenchResult:
    from tqdm import tqdm

    audio = [read_wav_as(p, cfg.line_rate) for p in cfg.examples]
    res = BenchResult()
    bar = tqdm(total=cfg.sessions * cfg.turns, desc=f"{cfg.sessions} callers", unit="turn")
    cpu0 = _proc_cpu_seconds(cfg.pids)
    t0 = time.monotonic()
    await asyncio.gather(*(_caller(i, cfg, audio, res, bar.update) for i in range(cfg.sessions)))
    res.wall_s = time.monotonic() - t0
    cpu1 = _proc_cpu_seconds(cfg.pids)
    bar.close()
    res.cpu_s = {k: round(cpu1[k] - cpu0.get(k, 0.0), 2) for k in cpu1}
    return res


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "os": platform.platform()}


def report(cfg: BenchConfig, res: BenchResult) -> dict:
    return {
        "sessions": cfg.sessions,
        "turns_per_session": cfg.turns,
        "barge_in_share": cfg.barge_in_share,
        "turn_detection": {"mode": cfg.turn_detection or "default", "eagerness": cfg.eagerness or "default"},
        "line": "8 kHz mu-law in, 8 kHz PCM16 out" if cfg.telephone else "16 kHz PCM16",
        "client_nice": cfg.nice,
        "ramp_s": cfg.ramp_s,
        "response_latency_ms": percentiles(res.response_latency_ms),
        "voice_to_voice_ms": percentiles(res.voice_to_voice_ms),
        "caller_voice_to_voice_ms": percentiles(res.caller_voice_to_voice_ms),
        "barge_in_stop_ms": percentiles(res.barge_in_stop_ms),
        "played_ms_error_ms": percentiles(res.played_ms_error_ms),
        "stages_ms": {k: percentiles(v) for k, v in sorted(res.stages.items())},
        "turns_completed": res.turns_ok,
        "turns_interrupted": res.turns_interrupted,
        "errors": len(res.errors),
        "error_samples": res.errors[:10],
        "wall_s": round(res.wall_s, 1),
        "throughput_turns_per_s": round((res.turns_ok + res.turns_interrupted) / res.wall_s, 3) if res.wall_s else 0,
        "cpu_seconds": res.cpu_s,
        "cpu_percent_of_one_core": {k: round(100 * v / res.wall_s, 1) for k, v in res.cpu_s.items()}
        if res.wall_s
        else {},
        "machine": machine(),
    }


def markdown(rep: dict) -> str:
    def row(name: str, p: dict) -> str:
        f = lambda x: "-" if x is None else f"{x:.0f}"  # noqa: E731
        return f"| {name} | {f(p['p50'])} | {f(p['p95'])} | {f(p['p99'])} | {p['n']} |"

    lines = [
        f"**{rep['sessions']} callers x {rep['turns_per_session']} turns**, barge-in share "
        f"{rep['barge_in_share']:.0%}, {rep['wall_s']} s, {rep['throughput_turns_per_s']} turns/s, "
        f"errors {rep['errors']}",
        "",
        "| metric (ms) | p50 | p95 | p99 | n |",
        "|---|---|---|---|---|",
        row("response latency", rep["response_latency_ms"]),
        row("voice-to-voice (gateway)", rep["voice_to_voice_ms"]),
        row("voice-to-voice (caller)", rep["caller_voice_to_voice_ms"]),
        row("barge-in stop", rep["barge_in_stop_ms"]),
        row("played_ms error", rep["played_ms_error_ms"]),
    ]
    lines += [row(f"stage: {k}", v) for k, v in rep["stages_ms"].items()]
    if rep["cpu_percent_of_one_core"]:
        lines += [
            "",
            "CPU (% of one core): " + ", ".join(f"{k} {v}" for k, v in sorted(rep["cpu_percent_of_one_core"].items())),
        ]
    if rep.get("codec_streaming_rtf"):
        rtf = ", ".join(f"{op} {v}" for op, v in sorted(rep["codec_streaming_rtf"].items()))
        cpu = ", ".join(f"{op} {v}" for op, v in sorted(rep.get("codec_streaming_rtf_cpu", {}).items()))
        lines += ["", f"Codec compute seconds per audio second, streaming: {rtf} (wall); {cpu} (CPU time)"]
    return "\n".join(lines) + "\n"


CAPACITY_P95_MS = 150.0


def capacity(reports: list[dict], p95_ms: float = CAPACITY_P95_MS) -> int:
    """The most callers at which p95 response latency stayed within `p95_ms` with no errors
    (and every smaller level measured did too); 0 if none did."""
    best = 0
    for rep in sorted(reports, key=lambda r: r["sessions"]):
        p95 = rep["response_latency_ms"]["p95"]
        if rep["errors"] or p95 is None or p95 > p95_ms:
            break
        best = rep["sessions"]
    return best


def sweep_markdown(reports: list[dict]) -> str:
    f = lambda x: "-" if x is None else f"{x:.0f}"  # noqa: E731
    lines = [
        f"**Capacity: {capacity(reports)} callers** (most callers with response latency p95 <= "
        f"{CAPACITY_P95_MS:.0f} ms and no errors)",
        "",
        "| callers | response p50 / p95 ms | caller voice-to-voice p50 / p95 ms | errors | CPU % of one core |",
        "|---|---|---|---|---|",
    ]
    for rep in reports:
        r, v = rep["response_latency_ms"], rep["caller_voice_to_voice_ms"]
        cpu = ", ".join(f"{k} {x:.0f}" for k, x in sorted(rep["cpu_percent_of_one_core"].items()))
        lines.append(
            f"| {rep['sessions']} | {f(r['p50'])} / {f(r['p95'])} | {f(v['p50'])} / {f(v['p95'])} "
            f"| {rep['errors']} | {cpu} |"
        )
    return "\n".join(lines) + "\n"


def _plot(reports: list[dict], path: Path) -> None:
    """Response latency p50/p95 against callers (PNG; needs matplotlib, in the dev extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["sessions"] for r in reports]
    fig, ax = plt.subplots(figsize=(6, 4))
    for q in ("p50", "p95"):
        ax.plot(n, [r["response_latency_ms"][q] for r in reports], marker="o", label=f"response latency {q}")
    ax.axhline(CAPACITY_P95_MS, color="grey", linestyle="--", label=f"{CAPACITY_P95_MS:.0f} ms")
    ax.set(xscale="log", yscale="log", xlabel="concurrent callers", ylabel="ms")
    ax.set_xticks(n, [str(x) for x in n])
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(a) -> int:
    examples = sorted(Path(a.examples).glob("*.wav")) if Path(a.examples).is_dir() else [Path(a.examples)]
    if not examples:
        print(f"error: no WAV files in {a.examples}")
        return 2
    pids_file = Path(a.run_dir) / "pids.json"
    pids = json.loads(pids_file.read_text()) if pids_file.exists() else None
    levels = [int(x) for x in a.sweep.split(",")] if getattr(a, "sweep", "") else [a.sessions]
    reports = []
    failed = False
    for sessions in levels:
        rep, ok = _one(a, examples, pids, sessions)
        reports.append(rep)
        failed = failed or not ok
    _codec_ratio(a, reports)
    # Written after the codec ratio, so the files hold it. A sweep (of any number of levels)
    # writes the sweep's form; a plain run its one report.
    if getattr(a, "sweep", ""):
        md = sweep_markdown(reports)
        print(md)
        out: dict = {"capacity": capacity(reports), "levels": reports}
    else:
        md, out = markdown(reports[0]), reports[0]
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    if a.markdown:
        Path(a.markdown).write_text(md)
    if getattr(a, "sweep", "") and getattr(a, "plot", ""):
        _plot(reports, Path(a.plot))
    return 1 if failed else 0


def _codec_ratio(a, reports: list[dict]) -> None:
    """After the levels, on the same machine: the codec checkpoint run offline, and each level's
    streaming throughput as a share of it (`codec_streaming_vs_offline`, per op)."""
    ckpt = getattr(a, "codec_checkpoint", None)
    if not ckpt or not any(r.get("codec_streaming_rtf") for r in reports):
        return
    if not (Path(ckpt) / "config.json").exists():
        print(f"codec throughput: no checkpoint at {ckpt}; streaming figures only")
        return
    offline = codec_throughput.offline_rtf(Path(ckpt))
    offline_cpu = codec_throughput.offline_rtf(Path(ckpt), clock="cpu")
    for rep in reports:
        if rep.get("codec_streaming_rtf"):
            rep["codec_offline_rtf"] = offline
            rep["codec_offline_rtf_cpu"] = offline_cpu
            rep["codec_streaming_vs_offline"] = codec_throughput.ratio(offline, rep["codec_streaming_rtf"])
            rep["codec_streaming_vs_offline_cpu"] = codec_throughput.ratio(
                offline_cpu, rep.get("codec_streaming_rtf_cpu", {})
            )
    print(
        f"Codec, offline ({codec_throughput.OFFLINE_STREAMS} clips of {codec_throughput.OFFLINE_SECONDS:g} s, "
        f"one batch, one thread): compute seconds per audio second {offline} (wall), {offline_cpu} (CPU time)"
    )
    for rep in reports:
        if rep.get("codec_streaming_vs_offline"):
            print(
                f"  {rep['sessions']} callers: streaming reaches {rep['codec_streaming_vs_offline']} of offline "
                f"by the wall clock, {rep.get('codec_streaming_vs_offline_cpu', {})} by CPU time"
            )


def _one(a, examples: list[Path], pids, sessions: int) -> tuple[dict, bool]:
    cfg = BenchConfig(
        target=a.target,
        sessions=sessions,
        turns=a.turns,
        examples=examples,
        barge_in_share=a.barge_in_share,
        seed=a.seed,
        voice=a.voice,
        api_key=a.api_key,
        pids=pids,
        turn_detection=a.turn_detection,
        eagerness=a.eagerness,
        telephone=getattr(a, "telephone", False),
        ramp_s=getattr(a, "ramp_s", 1.0),
        nice=os.nice(0),  # the client's niceness now
    )
    urls = [u for u in getattr(a, "codec_metrics", "").split(",") if u]
    before = codec_throughput.scrape(urls) if urls else None
    res = asyncio.run(run_bench(cfg))
    rep = report(cfg, res)
    after = codec_throughput.scrape(urls) if before is not None else None
    if before is not None and after is not None:
        rep["codec_streaming_rtf"] = codec_throughput.streaming_rtf(before, after)
        rep["codec_streaming_rtf_cpu"] = codec_throughput.streaming_rtf(before, after, clock="cpu")
    elif urls:
        print(f"codec throughput: cannot read {','.join(urls)}; no streaming codec figures")
    print(markdown(rep))
    return rep, not res.errors
