"""The end-of-turn corpus: what the test holds out, and a tiny build end to end."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from telugu_s2s.training import synth, turn_data
from telugu_s2s.training.turn_data import CLAUSES, HESITATIONS, LIST_ITEMS, OPENERS, Split


@pytest.mark.parametrize("wide", [False, True])
def test_the_test_texts_and_callers_are_never_trained_on(wide):
    assert not set(turn_data.questions(held=True)) & set(turn_data.questions(held=False))
    for parts in (OPENERS, CLAUSES, LIST_ITEMS, HESITATIONS):
        assert not set(parts.held) & set(parts.train)
    split = {name: {c.id for c in callers} for name, callers in turn_data.callers_by_split(wide).items()}
    assert split["test"] == set(turn_data.TEST_CALLERS)
    assert split["val"] == set(turn_data.VAL_CALLERS + (turn_data.WIDE_VAL_CALLERS if wide else ()))
    assert len(split["train"]) == (48 if wide else 28)
    assert not split["train"] & split["val"] and not split["train"] & split["test"] and not split["val"] & split["test"]


def test_test_pauses_are_250_to_800_ms_and_tunes_are_mixed():
    callers = [c for c in synth.callers_with_more(synth.CALLER_VOICES, synth.HELD_OUT_CALLERS) if c.id == "c_m4"]
    clips = turn_data.plan("test", callers, 200, seed=0)
    pauses = [p for c in clips for p in c.pauses_ms]
    assert pauses and min(pauses) >= 250 and max(pauses) <= 800
    finals = [c.tunes[-1] for c in clips]
    assert 0 < sum(t is None for t in finals) < len(finals)  # some plain, most falling
    assert all(t.pitch_pct < 0 for t in finals if t is not None)
    assert turn_data.ssml("నా పేరు ఏమిటి?", turn_data.Tune(-20, 80)).endswith(
        '<prosody pitch="-20%" rate="80%">ఏమిటి?</prosody></speak>'
    )


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_a_tiny_build_labels_pauses_and_ends(tmp_path):
    info = turn_data.build(tmp_path, {"train": 1, "val": 1, "test": 1}, seed=0)
    assert info["counts"]["test"]["clips"] == len(turn_data.TEST_CALLERS)
    test = Split.load(tmp_path, "test")
    labels = test.examples[:, 3]
    assert set(np.unique(labels)) == {0, 1}  # some asks inside a turn, some after its end
    for ci, row in enumerate(test.rows):
        ex = test.examples[test.examples[:, 0] == ci]
        assert len(test.clip_audio(ci)) == row["samples"]
        assert ex[:, 2].min() >= turn_data.MIN_SILENCE_MS
        # "finished" exactly from the end of the speech on: frame index -> the sample it ends at.
        n_frames = test.mel_offsets[ci + 1] - test.mel_offsets[ci]
        first_end = row["samples"] - (n_frames - 1) * 160
        ends = first_end + ex[:, 1] * 160
        assert ((ends >= row["speech_end"]) == (ex[:, 3] == 1)).all()
    w = test.window(int(test.examples[0, 0]), int(test.examples[0, 1]))
    assert w.shape == (150, 42)
