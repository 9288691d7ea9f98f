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
    assert corpus.FALLBACK in replies
    assert corpus.reply_classes()[corpus.FALLBACK] == len(replies) - 1


def test_every_question_has_three_phrasings_and_training_never_hears_the_held_out_one():
    train, test = corpus.utterances("train"), corpus.utterances("test")
    texts = [u.text for u in test]
    assert len(texts) == len(set(texts))  # no phrasing is shared between two intents
    for i in range(len(corpus.QA_PAIRS)):
        assert {u.phrasing for u in test if u.intent == f"qa{i:02d}"} == {0, 1, 2}
    held = {u.text for u in test if u.held_out_phrasing}
    assert held and not held & {u.text for u in train}
    assert not any(u.held_out_phrasing for u in train)
    # out-of-domain: test sentences are new, and their reply is the fallback
    ood_train = {u.text for u in train if u.kind == "ood"}
    ood_test = {u.text for u in test if u.kind == "ood"}
    assert len(ood_test) >= 10 and not ood_train & ood_test
    assert all(u.reply == corpus.FALLBACK for u in train + test if u.kind == "ood")
    assert all(u.reply == "" for u in test if u.kind == "name_recall")


def test_more_sentences_are_training_only_and_share_no_text_with_the_test():
    added = corpus.more_utterances()
    more = corpus.utterances("train") + added
    for i in range(len(corpus.QA_PAIRS)):
        assert {u.phrasing for u in added if u.intent == f"qa{i:02d}"} == {3, 4}
    assert {u.intent for u in added if u.kind == "name_intro"} == {f"intro:{n}" for n in corpus.NAMES}
    assert any(u.kind == "name_recall" for u in added)
    assert sum(u.kind == "ood" for u in added) >= 3 * len(corpus.OOD_TRAIN)
    assert not any(u.held_out_phrasing for u in added)
    texts = [u.text for u in more]
    assert len(texts) == len(set(texts))
    # No added text equals, contains or sits inside a held-out phrasing or a test OOD sentence.
    unheard = [u.text for u in corpus.utterances("test") if u.held_out_phrasing or u.kind == "ood"]
    assert not [(a.text, t) for a in added for t in unheard if a.text in t or t in a.text]
    assert all(u.reply == corpus.FALLBACK for u in added if u.kind == "ood")
    assert all(u.reply == corpus.QA_PAIRS[int(u.intent[2:])][2] for u in added if u.kind == "qa")


def test_more_sentences_add_training_clips_and_leave_the_test_alone(tmp_path):
    from dataclasses import replace

    cfg = tiny_cfg(tmp_path)
    rows0, _ = synth_mod.plan(cfg)
    rows2, _ = synth_mod.plan(replace(cfg, more_sentences=2))
    train0 = [r for r in rows0 if r["split"] == "train"]
    train2 = [r for r in rows2 if r["split"] == "train"]
    callers = {r["caller"] for r in train0}
    assert len(train2) == len(train0) + 2 * len(callers) * len(corpus.more_utterances())
    assert [r for r in train2 if r in train0] == train0  # the clips before keep their renders
    assert [r for r in rows0 if r["split"] != "train"] == [r for r in rows2 if r["split"] != "train"]
    assert synth_mod.data_version(cfg) != synth_mod.data_version(replace(cfg, more_sentences=2))


def test_composed_dialogues_are_seeded_and_recalls_follow_their_introduction():
    import random

    utts = corpus.utterances("test")
    a = corpus.compose_dialogues(random.Random(1), utts, 50)
    assert a == corpus.compose_dialogues(random.Random(1), utts, 50)
    assert a != corpus.compose_dialogues(random.Random(2), utts, 50)
    recalls = 0
    for turns in a:
        assert 3 <= len(turns) <= 5
        for i, t in enumerate(turns):
            if t.utterance.kind == "name_recall":
                recalls += 1
                intro = turns[t.depends_on]
                assert t.depends_on < i and intro.utterance.kind == "name_intro"
                assert t.reply == corpus.name_answer(intro.utterance.intent.split(":", 1)[1])
    assert recalls >= 15
    # the compositions are not a fixed set of scripts: almost all differ
    assert len({tuple(t.utterance.intent for t in d) for d in a}) >= 45


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
    assert not {r["user_text"] for r in train} & {r["user_text"] for r in test if r["held_out_phrasing"]}
    for r in train[:3] + test[:3]:
        assert set(r) >= {"user_text", "user_audio", "reply_text", "reply_audio", "voice", "dialogue_id", "turn_index",
                          "kind", "intent", "aug"}
        assert synth_mod.read_audio(tiny_data / r["user_audio"]).size > 0
    assert all(r["reply_audio"] for r in test)


@needs_espeak
def test_validation_lists_every_missing_file(tiny_data, tmp_path):
    rows = read_jsonl(tiny_data / "splits" / "train.jsonl") + read_jsonl(tiny_data / "splits" / "test.jsonl")
    validate(tiny_data, rows)  # all present
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(tiny_data, broken)
    gone = sorted({rows[0]["user_audio"], rows[-1]["reply_audio"]})
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

    def flaky(text, voice, out, cfg, aug=None):
        if not skipped and "reply" in str(out):
            skipped.append(out)
            return  # "forgets" to write this file
        real(text, voice, out, cfg, aug)

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


def test_training_clips_jitter_the_vocal_tract_and_held_out_callers_do_not(tmp_path):
    from dataclasses import replace

    plain = tiny_cfg(tmp_path)
    cfg = replace(plain, jitter_formant=0.1)
    rows, renders = synth_mod.plan(cfg)
    train = [r.get("caller_formant", 1.0) for r in rows if r["split"] == "train"]
    held = {r.get("caller_formant", 1.0) for r in rows if r["split"] != "train"}
    assert held == {1.0}
    assert len(set(train)) > 1
    assert all(abs(f - 1.0) <= cfg.jitter_formant + 1e-9 for f in train)
    # speed and pitch per clip are those of the data without the jitter
    plain_rows, plain_renders = synth_mod.plan(plain)
    assert [(r["caller_speed"], r["caller_pitch"]) for r in rows] == [
        (r["caller_speed"], r["caller_pitch"]) for r in plain_rows]
    assert "caller_formant" not in plain_rows[0]
    assert set(renders) != set(plain_renders)
    assert synth_mod.data_version(plain) != synth_mod.data_version(cfg)


def test_degradation_sets_level_noise_band_and_silence():
    import numpy as np

    rate = synth_mod.SAMPLE_RATE
    t = np.arange(rate) / rate
    x = (0.9 * np.sin(2 * np.pi * 200 * t) * (t < 0.8)).astype(np.float32)
    clean = synth_mod.Aug(level_db=-20.0, snr_db=None, noise="white", telephone=False, lead_ms=300, tail_ms=100, seed=1)
    y = synth_mod.apply_aug(x, clean)
    assert y.size == x.size + rate * 400 // 1000
    assert abs(20 * np.log10(np.abs(y).max()) + 20.0) < 0.1
    assert np.all(y[: rate * 300 // 1000] == 0)  # the silence before the turn
    noisy = synth_mod.apply_aug(x, synth_mod.Aug(-6.0, 10.0, "pink", False, 300, 100, 1))
    assert np.abs(noisy[: rate // 4]).mean() > 1e-3  # noise in the silence too
    phone = synth_mod.apply_aug(np.random.default_rng(0).standard_normal(rate).astype(np.float32) * 0.1,
                                synth_mod.Aug(-6.0, None, "white", True, 0, 0, 1))
    spec = np.abs(np.fft.rfft(phone))
    freqs = np.fft.rfftfreq(phone.size, 1 / rate)
    assert spec[freqs > 4500].mean() < 0.05 * spec[freqs < 3500].mean()  # the telephone band
    # draws stay in the documented ranges
    import random

    rng = random.Random(0)
    augs = [synth_mod.draw_aug(rng) for _ in range(200)]
    assert all(-30.0 <= a.level_db <= 0.0 for a in augs)
    assert all(a.snr_db is None or 10.0 <= a.snr_db <= 30.0 for a in augs)
    assert 0.3 < np.mean([a.snr_db is not None for a in augs]) < 0.7
    assert 0.15 < np.mean([a.telephone for a in augs]) < 0.45


def test_more_callers_adds_training_callers_and_keeps_the_held_out_ones():
    callers = synth_mod.callers_with_more(synth_mod.CALLER_VOICES, synth_mod.HELD_OUT_CALLERS)
    held = synth_mod.held_out_with_more(synth_mod.HELD_OUT_CALLERS)
    assert len(callers) == (len(synth_mod.CALLER_VOICES) + len(synth_mod.MORE_CALLER_VOICES)
                            + len(synth_mod.MORE_HELD_OUT_VOICES))
    assert [c.id for c in callers[-4:]] == list(held)
    ids = [c.id for c in callers]
    assert len(ids) == len(set(ids))
    product = {v.variant for v in synth_mod.PRODUCT_VOICES.values()}
    assert not {c.variant for c in callers} & product


def test_train_variants_render_each_training_utterance_anew_and_leave_the_test_alone(tmp_path):
    from dataclasses import replace

    one = tiny_cfg(tmp_path)
    three = replace(one, train_variants=3)
    rows1, _ = synth_mod.plan(one)
    rows3, _ = synth_mod.plan(three)
    train1 = [r for r in rows1 if r["split"] == "train"]
    train3 = [r for r in rows3 if r["split"] == "train"]
    assert len(train3) == 3 * len(train1)
    assert {r["user_audio"] for r in train1} < {r["user_audio"] for r in train3}  # variant 0 unchanged
    assert len({r["user_audio"] for r in train3}) == len(train3)  # every variant its own render
    assert [r for r in rows1 if r["split"] != "train"] == [r for r in rows3 if r["split"] != "train"]
    assert synth_mod.data_version(one) != synth_mod.data_version(three)


def test_wide_callers_are_new_voices_that_share_nothing_with_the_held_out_ones(tmp_path):
    from dataclasses import replace

    more = synth_mod.callers_with_more(synth_mod.CALLER_VOICES, synth_mod.HELD_OUT_CALLERS)
    held = synth_mod.held_out_with_more(synth_mod.HELD_OUT_CALLERS)
    wide = synth_mod.callers_with_wide(more, held)
    assert [c.id for c in wide[-len(held):]] == list(held)
    assert len({c.id for c in wide}) == len(wide) == len(more) + len(synth_mod.WIDE_CALLER_VOICES)
    variants = [c.variant.lower() for c in wide]
    assert len(set(variants)) == len(variants)  # every caller its own variant file
    product = {v.variant.lower() for v in synth_mod.PRODUCT_VOICES.values()}
    assert not set(variants) & product
    held_names = ("iven", "anika", "f5", "m4")
    assert not [v for v in map(str.lower, (c.variant for c in synth_mod.WIDE_CALLER_VOICES))
                if any(h in v for h in held_names)]

    # --wide-variants renders the wide callers' clips that many times, the others as before.
    cfg = replace(tiny_cfg(tmp_path), callers=synth_mod.callers_with_wide(synth_mod.CALLER_VOICES,
                                                                        synth_mod.HELD_OUT_CALLERS))
    rows, _ = synth_mod.plan(replace(cfg, train_variants=2, wide_variants=1))
    per_caller: dict[str, int] = {}
    for r in rows:
        if r["split"] == "train":
            per_caller[r["caller"]] = per_caller.get(r["caller"], 0) + 1
    wide_ids = {c.id for c in synth_mod.WIDE_CALLER_VOICES}
    base = {n for c, n in per_caller.items() if c not in wide_ids}
    assert {n for c, n in per_caller.items() if c in wide_ids} == {min(base) // 2}
    assert synth_mod.data_version(replace(cfg, wide_variants=1)) != synth_mod.data_version(cfg)
