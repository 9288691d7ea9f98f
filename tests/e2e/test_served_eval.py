"""`eval --served`: test dialogues spoken into the real stack and scored from the reply audio."""

from __future__ import annotations

import shutil

import pytest

from telugu_s2s.local.stack import REPO_ROOT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed"),
]


@pytest.fixture(scope="module")
def tiny_test_set(tmp_path_factory):
    """A few held-out-caller test dialogues, encoded with the stack's own codec."""
    from telugu_s2s.training.encode import encode_corpus
    from telugu_s2s.training.synth import CALLER_VOICES, HELD_OUT_CALLERS, SynthConfig, synth

    d = tmp_path_factory.mktemp("served_eval_data")
    held = tuple(c for c in CALLER_VOICES if c.id in HELD_OUT_CALLERS)
    synth(SynthConfig(data_dir=d, callers=CALLER_VOICES[:1] + held, limit=4, test_dialogues=2), progress=False)
    encode_corpus(d, REPO_ROOT / "models" / "codec", progress=False)
    return d


def test_served_eval_scores_every_turn_of_real_calls(stack, tiny_test_set):
    from telugu_s2s.training import synth
    from telugu_s2s.training.served_eval import ServedEvalConfig, dialogues, eval_served

    rows = synth.read_jsonl(tiny_test_set / "splits" / "test.jsonl")
    calls = dialogues(rows)[:3]
    res = eval_served(ServedEvalConfig(target=stack.cfg.gateway_target, data_dir=tiny_test_set,
                                       codec_dir=REPO_ROOT / "models" / "codec", max_dialogues=3,
                                       concurrency=2, progress=False))
    assert res["path"] == "served" and res["calls"] == 3
    # every spoken turn came back as its own scored reply, in order, with no error
    assert len(res["details"]) == sum(len(turns) for turns, _ in calls)
    assert res["turns_with_errors"] == 0, [d["errors"] for d in res["details"] if d["errors"]]
    assert res["no_reply"] == 0
    assert all(d["seconds"] > 0.1 and d["nearest"] for d in res["details"])
    assert {d["user_text"] for d in res["details"]} <= {r["user_text"] for r in rows}
    assert res["response_latency_ms_p50"] > 0
    for key in ("reply_accuracy", "voice_accuracy", "by_category", "ood_fallback_rate", "duration_within_30pct",
                "confusions"):
        assert key in res
