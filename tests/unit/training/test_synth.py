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


@needs_espeak
def test_formant_scale_moves_the_spectrum_and_keys_the_file(tmp_path):
    import numpy as np
    from dataclasses import replace

    cfg = tiny_cfg(tmp_path)
    base = synth_mod.CALLER_VOICES[0]
    up = replace(base, formant=1.1)
    assert synth_mod._text_key("నమస్కారం", base) != synth_mod._text_key("నమస్కారం", up)
    # an unscaled voice keeps the key it had before the scale existed
    assert synth_mod._text_key("నమస్కారం", base) == hashlib.sha256(
        f"{base.variant}|{base.speed}|{base.pitch}|నమస్కారం".encode()).hexdigest()[:16]

    def centroid(x):
        mag = np.abs(np.fft.rfft(x))
        freqs = np.fft.rfftfreq(x.size, 1 / synth_mod.SAMPLE_RATE)
        return float((mag * freqs).sum() / mag.sum())

    out = {}
    for name, voice in (("base", base), ("up", up)):
        synth_mod.render("మీరు ఎలా ఉన్నారు?", voice, tmp_path / f"{name}.wav", cfg)
        out[name] = synth_mod.read_audio(tmp_path / f"{name}.wav")
    # 10 % up: about 10 % shorter and 10 % brighter (a shorter vocal tract)
    assert 0.85 < out["up"].size / out["base"].size < 0.95
    assert 1.05 < centroid(out["up"]) / centroid(out["base"]) < 1.15


def test_training_dialogues_jitter_the_vocal_tract_and_held_out_callers_do_not(tmp_path):
    from dataclasses import replace

    plain = tiny_cfg(tmp_path)
    cfg = replace(plain, jitter_formant=0.1)
    rows, renders = synth_mod.plan(cfg)
    train = [r["caller_formant"] for r in rows if r["split"] == "train"]
    held = {r["caller_formant"] for r in rows if r["split"] != "train"}
    assert held == {1.0}
    assert len(set(train)) > 1
    assert all(abs(f - 1.0) <= cfg.jitter_formant + 1e-9 for f in train)
    # speed and pitch per dialogue are those of the data without the jitter
    plain_rows, plain_renders = synth_mod.plan(plain)
    assert [(r["caller_speed"], r["caller_pitch"]) for r in rows] == [
        (r["caller_speed"], r["caller_pitch"]) for r in plain_rows]
    # off (the default): no formant field, the same files and data version as before it existed
    assert "caller_formant" not in plain_rows[0]
    assert set(renders) != set(plain_renders)
    assert synth_mod.data_version(plain) != synth_mod.data_version(cfg)


def test_more_callers_adds_training_callers_and_keeps_the_held_out_ones():
    callers = synth_mod.callers_with_more(synth_mod.CALLER_VOICES, synth_mod.HELD_OUT_CALLERS)
    assert len(callers) == len(synth_mod.CALLER_VOICES) + len(synth_mod.MORE_CALLER_VOICES)
    assert [c.id for c in callers[-2:]] == list(synth_mod.HELD_OUT_CALLERS)
    ids = [c.id for c in callers]
    assert len(ids) == len(set(ids))
    product = {v.variant for v in synth_mod.PRODUCT_VOICES.values()}
    assert not {c.variant for c in callers} & product
