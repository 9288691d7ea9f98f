import hashlib
import json

import pytest

from telugu_s2s.training import corpus
from telugu_s2s.training import synth as synth_mod
from telugu_s2s.training.synth import DataValidationError, read_jsonl, synth, validate

from .conftest import needs_espeak, tiny_cfg


def test_corpus_has_enough_pairs_names_and_unique_answers():
    assert len(corpus.QA_PAIRS) >= 60
    assert len(corpus.NAMES) >= 6
    topics = {t for t, _, _ in corpus.QA_PAIRS}
    assert {"greeting", "time", "weather", "directions", "food", "family", "help"} <= topics
    replies = corpus.all_reply_texts()
    assert len(replies) == len(set(replies))
    recalls = [t for s in corpus.build_scripts() for t in s.turns if t.kind == "name_recall"]
    assert len(recalls) == len(corpus.NAMES)
    assert all(t.depends_on == 0 for t in recalls)


def test_scripts_are_deterministic():
    assert corpus.build_scripts(0) == corpus.build_scripts(0)
    assert corpus.build_scripts(0) != corpus.build_scripts(1)


def _tree_digest(d):
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(d)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@needs_espeak
def test_synth_is_deterministic_and_splits_hold_out_callers(tiny_data, tmp_path):
    again = tmp_path / "again"
    synth(tiny_cfg(again), progress=False)
    assert _tree_digest(tiny_data) == _tree_digest(again)
    train = read_jsonl(tiny_data / "splits" / "train.jsonl")
    test = read_jsonl(tiny_data / "splits" / "test.jsonl")
    held = json.loads((tiny_data / "data_info.json").read_text())["held_out_callers"]
    assert train and test
    assert not {r["caller"] for r in train} & set(held)
    assert {r["caller"] for r in test} <= set(held)
    assert not {r["dialogue_id"] for r in train} & {r["dialogue_id"] for r in test}
    for r in train[:3]:
        assert set(r) >= {"user_text", "user_audio", "reply_text", "reply_audio", "voice", "dialogue_id", "turn_index"}
        assert synth_mod.read_audio(tiny_data / r["user_audio"]).size > 0


@needs_espeak
def test_validation_lists_every_missing_file(tiny_data, tmp_path):
    rows = read_jsonl(tiny_data / "splits" / "train.jsonl")
    validate(tiny_data, rows)  # all present
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(tiny_data, broken)
    gone = sorted({rows[0]["user_audio"], rows[1]["reply_audio"]})
    for rel in gone:
        (broken / rel).unlink()
    with pytest.raises(DataValidationError) as err:
        validate(broken, rows)
    assert sorted(p.removeprefix("missing: ") for p in err.value.problems) == gone
    for rel in gone:
        assert rel in str(err.value)


@needs_espeak
def test_wrong_rate_is_reported(tiny_data, tmp_path):
    import shutil

    import numpy as np

    d = tmp_path / "rate"
    shutil.copytree(tiny_data, d)
    rows = read_jsonl(d / "splits" / "train.jsonl")
    synth_mod.write_wav(d / rows[0]["user_audio"], np.zeros(16000, np.float32), rate=16000)
    with pytest.raises(DataValidationError, match="wrong rate"):
        validate(d, rows)


@needs_espeak
def test_no_split_is_written_when_files_are_missing(tmp_path, monkeypatch):
    real = synth_mod.render
    skipped = []

    def flaky(text, voice, out, cfg):
        if not skipped and "reply" in str(out):
            skipped.append(out)
            return  # "forgets" to write this file
        real(text, voice, out, cfg)

    monkeypatch.setattr(synth_mod, "render", flaky)
    d = tmp_path / "d"
    with pytest.raises(DataValidationError) as err:
        synth(tiny_cfg(d), progress=False)
    assert str(skipped[0].relative_to(d)) in str(err.value)
    assert not (d / "splits").exists()
    assert not (d / "manifest.jsonl").exists()
