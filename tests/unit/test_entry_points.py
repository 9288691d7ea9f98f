"""Every service's `python -m` entry point answers a bad setting the same way: one line on
stderr naming the service and the problem, exit status 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CASES = {
    "gateway: a bad number": ("telugu_s2s.gateway", {"TS2S_GATEWAY_MAX_CALLS": "lots"}, "TS2S_GATEWAY_MAX_CALLS"),
    "gateway: out of range": ("telugu_s2s.gateway", {"TS2S_GATEWAY_CONTEXT_TURNS": "11"}, "context_turns must be 0..10"),
    "gateway: keys file missing": (
        "telugu_s2s.gateway",
        {"TS2S_GATEWAY_AUTH": "required", "TS2S_GATEWAY_API_KEYS_FILE": "/nonexistent/keys.json",
         "TS2S_GATEWAY_PORT": "0", "TS2S_GATEWAY_METRICS_PORT": "0"},
        "/nonexistent/keys.json",
    ),
    "gateway: turn model missing": (
        "telugu_s2s.gateway",
        {"TS2S_GATEWAY_AUTH": "disabled", "TS2S_GATEWAY_TURN_MODEL": "/nonexistent/turn.npz",
         "TS2S_GATEWAY_PORT": "0", "TS2S_GATEWAY_METRICS_PORT": "0"},
        "/nonexistent/turn.npz",
    ),
    "gateway: unknown turn detection": (
        "telugu_s2s.gateway", {"TS2S_GATEWAY_TURN_DETECTION": "vad"}, "turn_detection must be 'turn_model' or 'silence'"
    ),
    "gateway: preempt_at out of range": (
        "telugu_s2s.gateway", {"TS2S_GATEWAY_PREEMPT_AT": "1"}, "preempt_at must be 0 (off) or a probability below 1"
    ),
    "context: a bad setting": ("telugu_s2s.context", {"TS2S_CONTEXT_MAX_TURNS": "-1"}, "configuration error"),
    "codec: a bad setting": ("telugu_s2s.codec", {"TS2S_CODEC_MAX_BATCH": "0"}, "TS2S_CODEC_MAX_BATCH"),
    "codec: not a number": ("telugu_s2s.codec", {"TS2S_CODEC_PORT": "abc"}, "TS2S_CODEC_PORT='abc'"),
    "web: not a number": ("telugu_s2s.web", {"TS2S_WEB_PORT": "abc"}, "TS2S_WEB_PORT"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_setting_is_one_line_and_exit_2(case):
    module, env, needle = CASES[case]
    proc = subprocess.run([sys.executable, "-m", module], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("usage:")]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
