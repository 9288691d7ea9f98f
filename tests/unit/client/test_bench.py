"""The benchmark's capacity figure and sweep table."""

from __future__ import annotations

from telugu_s2s.client.bench import capacity, sweep_markdown


def level(sessions: int, p95: float | None, errors: int = 0) -> dict:
    lat = {"p50": p95 and p95 / 2, "p95": p95, "p99": p95, "n": 4}
    return {
        "sessions": sessions,
        "response_latency_ms": lat,
        "caller_voice_to_voice_ms": lat,
        "errors": errors,
        "cpu_percent_of_one_core": {"codec": 50.0, "bench_client": 10.0},
    }


def test_capacity_is_the_last_level_within_the_bound_with_no_errors() -> None:
    assert capacity([level(1, 60), level(4, 90), level(8, 140), level(16, 400)]) == 8
    assert capacity([level(1, 60), level(4, 90, errors=1), level(8, 100)]) == 1  # no skipping a bad level
    assert capacity([level(1, 200)]) == 0
    assert capacity([level(1, None)]) == 0  # nothing measured is no capacity


def test_sweep_table_names_the_capacity_and_each_level() -> None:
    md = sweep_markdown([level(1, 60), level(16, 400)])
    assert md.startswith("**Capacity: 1 callers**") and "| 16 | 200 / 400 |" in md and "bench_client 10" in md


def test_bench_parses_without_a_sweep_and_refuses_a_bad_one() -> None:
    import pytest

    from telugu_s2s.cli.main import build_parser

    a = build_parser().parse_args(["bench", "--sessions", "2", "--turn-detection", "silence"])
    assert a.sweep == "" and a.sessions == 2 and a.turn_detection == "silence"
    assert build_parser().parse_args(["bench", "--sweep", "1,4"]).sweep == "1,4"
    for bad in ("0", "1,x", "4,-1"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["bench", "--sweep", bad])


def test_the_callers_yield_the_cores_and_the_report_says_how_they_ran() -> None:
    from pathlib import Path

    from telugu_s2s.cli.main import build_parser
    from telugu_s2s.client.bench import BenchConfig, BenchResult, report

    a = build_parser().parse_args(["bench"])
    assert a.nice == 10 and a.ramp_s == 1.0
    a = build_parser().parse_args(["bench", "--nice", "0", "--ramp-s", "6"])
    assert a.nice == 0 and a.ramp_s == 6.0
    rep = report(BenchConfig("t", 2, 1, [Path("x.wav")], ramp_s=6.0, nice=10), BenchResult())
    assert rep["client_nice"] == 10 and rep["ramp_s"] == 6.0


def test_a_telephone_bench_speaks_mu_law_at_8_khz() -> None:
    from pathlib import Path

    from telugu_s2s.cli.main import build_parser
    from telugu_s2s.client.bench import BenchConfig

    assert build_parser().parse_args(["bench", "--telephone"]).telephone
    assert not build_parser().parse_args(["bench"]).telephone
    assert BenchConfig("t", 1, 1, [Path("x.wav")], telephone=True).line_rate == 8000
    assert BenchConfig("t", 1, 1, [Path("x.wav")]).line_rate == 16000


def test_every_run_writes_its_json_with_the_codec_ratio_a_one_level_sweep_too(tmp_path, monkeypatch) -> None:
    import json

    from telugu_s2s.cli.main import build_parser
    from telugu_s2s.client import bench

    (tmp_path / "q.wav").write_bytes(b"")  # only listed; the stand-in below speaks nothing
    monkeypatch.setattr(
        bench,
        "_one",
        lambda a, examples, pids, n: (
            {**level(n, 100), "codec_streaming_rtf": {"encode": 0.05}, "codec_streaming_rtf_cpu": {"encode": 0.02}},
            True,
        ),
    )
    monkeypatch.setattr(
        bench.codec_throughput, "offline_rtf", lambda ckpt, clock="wall": {"encode": 0.01 if clock == "wall" else 0.008}
    )
    monkeypatch.setattr(bench, "markdown", lambda rep: "one report")
    (tmp_path / "codec").mkdir()
    (tmp_path / "codec" / "config.json").write_text("{}")
    common = ["bench", "--examples", str(tmp_path), "--run-dir", str(tmp_path),
              "--codec-checkpoint", str(tmp_path / "codec")]
    for extra, name in ((["--sweep", "16"], "one-level.json"), (["--sessions", "2"], "plain.json")):
        out = tmp_path / name
        assert bench.main(build_parser().parse_args([*common, *extra, "--json", str(out)])) == 0
        data = json.loads(out.read_text())
        rep = data["levels"][0] if "levels" in data else data
        assert rep["codec_streaming_vs_offline"] == {"encode": 0.2}  # written after the ratio was added
        assert rep["codec_streaming_vs_offline_cpu"] == {"encode": 0.4}  # CPU time against CPU time
        assert ("capacity" in data) == (name == "one-level.json")
