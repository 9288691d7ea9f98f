import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from telugu_s2s.codec.checkpoint import load
from telugu_s2s.training.codec_train import train_codec

from .conftest import TINY_ARCH


def test_codec_train_step_saves_a_loadable_checkpoint(tiny_codec):
    cfg, result = tiny_codec
    assert result["steps"] == 3
    assert np.isfinite(result["final"]["loss"])
    loaded = load(cfg.out_dir)
    assert loaded.arch == TINY_ARCH
    assert not loaded.random
    assert json.loads((cfg.out_dir / "config.json").read_text())["meta"]["data_version"].startswith("telugu-synth-")


def test_codec_training_resumes(tiny_codec):
    from dataclasses import replace

    cfg, _ = tiny_codec
    result = train_codec(replace(cfg, steps=4))
    assert result["steps"] == 4
    hist = json.loads((cfg.run_dir / "history.json").read_text())
    assert [h["step"] for h in hist] == [1, 2, 3, 4]


SMALL_LISTENER = {"listener_layers": 1, "listener_dim": 16}


def test_s2s_train_step_and_eval_shapes(tiny_data, tiny_codec, tmp_path):
    from telugu_s2s.s2s.model import load_checkpoint
    from telugu_s2s.training.encode import encode_corpus, load_codes
    from telugu_s2s.training.s2s_train import S2STrainConfig, train_s2s

    cfg, _ = tiny_codec
    codes_path = encode_corpus(tiny_data, cfg.out_dir, out=tmp_path / "codes.npz", progress=False)
    codes = load_codes(codes_path)
    assert all(c.shape[0] == TINY_ARCH.codebooks_for(1.5) for c in codes.values())
    s2s_cfg = S2STrainConfig(data_dir=tiny_data, codes_path=codes_path, codec_dir=cfg.out_dir,
                             run_dir=tmp_path / "s2s_run", out_dir=tmp_path / "s2s", steps=2, batch_size=2,
                             log_every=1, progress=False, recognition_batch=2,
                             listener_pretrain=2, listener_batch=2,
                             model={"n_layers": 1, "d_model": 32, "n_heads": 2, "max_reply_frames": 64, **SMALL_LISTENER,
                                    "acoustic_dim": TINY_ARCH.dimension, "bidirectional_prefix": True,
                                    "voice_at_reply": True, "dropout": 0.1})
    result = train_s2s(s2s_cfg)
    assert result["steps"] == 2 and np.isfinite(result["final"]["loss"])
    loaded = load_checkpoint(s2s_cfg.out_dir)
    assert loaded.cfg.n_codebooks == TINY_ARCH.codebooks_for(1.5)
    assert loaded.cfg.codebook_size == TINY_ARCH.bins
    # run C's options: it reads the codec's own latent (the checkpoint carries the codebooks)
    assert loaded.cfg.acoustic_dim == TINY_ARCH.dimension and loaded.cfg.bidirectional_prefix
    from telugu_s2s.training.s2s_train import codec_code_vectors

    vectors = codec_code_vectors(load(cfg.out_dir))
    k = loaded.cfg.n_codebooks
    assert torch.equal(loaded.model.code_vectors[:, : TINY_ARCH.bins], torch.from_numpy(vectors[:k]))
    # the listener: warmed up alone first, its head sized by the corpus intents
    from telugu_s2s.training import corpus

    assert loaded.cfg.listener_layers == 1 and loaded.cfg.listener_classes == len(corpus.intent_classes())
    hist = json.loads((s2s_cfg.run_dir / "history.json").read_text())
    assert [h["listener_step"] for h in hist if "listener_step" in h] == [2]
    # a new run starts from that checkpoint's weights where they fit
    again = replace(s2s_cfg, run_dir=tmp_path / "again", out_dir=tmp_path / "again_out", steps=1,
                    listener_pretrain=0, init_from=s2s_cfg.out_dir, lr=0.0)
    train_s2s(again)
    after = load_checkpoint(again.out_dir).model.state_dict()
    assert all(torch.equal(v, after[n]) for n, v in loaded.model.state_dict().items())  # lr 0: unchanged


def test_eval_scores_turns_as_rendered_and_as_the_gateway_pads_them(tiny_data, tiny_codec, tmp_path):
    from telugu_s2s.codec.checkpoint import load
    from telugu_s2s.training.encode import encode_corpus
    from telugu_s2s.training.evaluate import EvalConfig, eval_s2s
    from telugu_s2s.training.s2s_train import S2STrainConfig, train_s2s

    cfg, _ = tiny_codec
    encode_corpus(tiny_data, cfg.out_dir, progress=False)
    s2s_cfg = S2STrainConfig(data_dir=tiny_data, codec_dir=cfg.out_dir, run_dir=tmp_path / "run",
                             out_dir=tmp_path / "s2s", steps=1, batch_size=2, progress=False,
                             listener_pretrain=2, listener_batch=2,
                             model={"n_layers": 1, "d_model": 32, "n_heads": 2, "max_reply_frames": 64, **SMALL_LISTENER})
    train_s2s(s2s_cfg)
    base = EvalConfig(data_dir=tiny_data, codec_dir=cfg.out_dir, s2s_dir=s2s_cfg.out_dir, split="test",
                      max_turns=3, max_frames=12, progress=False)
    plain = eval_s2s(base)
    padded = eval_s2s(replace(base, user_lead_ms=300, user_tail_ms=100))
    assert plain["n"] + plain["n_without_context"] == 3 == len(plain["details"])
    for res in (plain, padded):
        assert 0.0 <= res["reply_accuracy"] <= 1.0 and 0.0 <= res["voice_accuracy"] <= 1.0
        assert all(0 <= d["frames"] <= 12 for d in res["details"])
    assert plain["user_padding_ms"] == [0, 0] and padded["user_padding_ms"] == [300, 100]
    rate = load(cfg.out_dir).arch.frame_rate
    extra = round(0.3 * rate) + round(0.1 * rate)
    assert [d["user_frames"] + extra for d in plain["details"]] == [d["user_frames"] for d in padded["details"]]


def test_dtw_prefers_the_matching_sequence():
    from telugu_s2s.training.evaluate import dtw_distances

    rng = np.random.default_rng(0)
    a = rng.normal(size=(20, 8))
    b = rng.normal(size=(25, 8))
    stretched = np.repeat(a, 2, axis=0)  # same content, twice as slow
    d = dtw_distances(stretched, [b, a])
    assert d[1] < d[0]
    assert dtw_distances(a, [a])[0] == pytest.approx(0.0)


def test_cli_parses_every_subcommand():
    from telugu_s2s.training.cli import build_parser

    p = build_parser()
    assert p.parse_args(["data", "synth"]).data_cmd == "synth"
    assert p.parse_args(["train", "codec", "--steps", "5"]).steps == 5
    assert p.parse_args(["train", "s2s"]).train_cmd == "s2s"
    run_c = p.parse_args(["train", "s2s", "--model", '{"acoustic_dim": 64}', "--recognition-batch", "32"])
    assert run_c.model == {"acoustic_dim": 64} and run_c.recognition_batch == 32
    for bad in ("[1]", "{nope"):
        with pytest.raises(SystemExit):
            p.parse_args(["train", "s2s", "--model", bad])
    assert p.parse_args(["eval", "--json", "x.json"]).json == Path("x.json")
    assert p.parse_args(["all", "--codec-steps", "1"]).codec_steps == 1
    with pytest.raises(SystemExit):
        p.parse_args(["train", "nothing"])
    synth = p.parse_args(["data", "synth", "--more-callers", "--formant-jitter", "0.1"])
    assert synth.more_callers and synth.formant_jitter == 0.1
    plain = p.parse_args(["data", "synth"])
    assert not plain.more_callers and plain.formant_jitter == 0.0
    for bad in ("-0.1", "0.5", "x"):
        with pytest.raises(SystemExit):
            p.parse_args(["data", "synth", "--formant-jitter", bad])


def test_manifest_lists_sha256_and_refuses_oversized_models(tmp_path):
    import hashlib

    from telugu_s2s.training import export

    for sub in ("codec", "s2s"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "config.json").write_text("{}")
        (tmp_path / sub / "model.pt").write_bytes(b"weights-" + sub.encode())
    path = export.write_manifest(tmp_path, command="python -m telugu_s2s.training all",
                                 data_info={"data_version": "telugu-synth-x"}, eval_scores={"n": 1}, timings={})
    doc = json.loads(path.read_text())
    assert doc["files"]["s2s/model.pt"]["sha256"] == hashlib.sha256(b"weights-s2s").hexdigest()
    assert doc["data_version"] == "telugu-synth-x" and doc["eval"] == {"n": 1}
    import unittest.mock

    with unittest.mock.patch.object(export, "MAX_MODELS_BYTES", 10), pytest.raises(RuntimeError, match="40 MiB"):
        export.write_manifest(tmp_path, command="c", data_info={}, eval_scores=None, timings=None)


def test_user_augmentation_warps_time_and_swaps_some_tokens():
    import random

    from telugu_s2s.training.s2s_train import augment_user

    codes = np.stack([np.arange(200), np.arange(200) + 500]) % 1024
    lengths = set()
    for seed in range(20):
        warped = augment_user(codes, random.Random(seed), warp=0.15, token_noise=0.0, codebook_size=1024)
        assert warped.shape[0] == 2 and warped.dtype == codes.dtype
        assert 170 <= warped.shape[1] <= 230  # 200 frames x (1 +- 0.15)
        # frames are dropped or repeated, never reordered, and both codebooks move together
        assert np.all(np.diff(warped[0]) >= 0) and np.array_equal(warped[1] - warped[0], codes[1, :1] - codes[0, :1] + 0 * warped[0])
        lengths.add(warped.shape[1])
    assert len(lengths) > 5, "the warp factor does not vary"
    noisy = augment_user(codes, random.Random(1), warp=0.0, token_noise=0.1, codebook_size=1024)
    assert noisy.shape == codes.shape and noisy.min() >= 0 and noisy.max() < 1024
    assert 0.05 < float(np.mean(noisy != codes)) < 0.15
    same = augment_user(codes, random.Random(3), 0.15, 0.1, 1024)
    assert np.array_equal(same, augment_user(codes, random.Random(3), 0.15, 0.1, 1024)), "not reproducible"
    assert augment_user(codes, random.Random(0), 0.0, 0.0, 1024) is codes


def test_user_turns_are_padded_with_silence_codes_like_the_gateway_sends_them():
    from telugu_s2s.training.encode import pad_silence

    user = np.arange(10).reshape(2, 5)
    silence = np.array([[900, 901], [1000, 1001]])
    out = pad_silence(user, silence, lead=3, tail=2)
    assert out.shape == (2, 10)
    assert np.array_equal(out[:, 3:8], user)
    assert np.array_equal(out[:, :3], [[900, 901, 900], [1000, 1001, 1000]])
    assert np.array_equal(out[:, 8:], [[900, 901], [1000, 1001]])
    assert pad_silence(user, silence, 0, 0) is user


def _composer(**overrides):
    from telugu_s2s.training import corpus
    from telugu_s2s.training.s2s_train import Clip, Composer, S2STrainConfig

    def codes(tag: int, n: int = 3) -> np.ndarray:
        return np.full((2, n), tag, np.int64)

    clips = []
    for c, caller in enumerate(("a", "b")):
        base = 100 * c
        clips += [Clip(caller, "qa", f"qa{i:02d}", corpus.QA_PAIRS[i][2], codes(base + i)) for i in range(6)]
        clips += [Clip(caller, "ood", "ood", corpus.FALLBACK, codes(base + 20))]
        clips += [Clip(caller, "name_intro", f"intro:{n}", corpus.name_intro(n)[1], codes(base + 30 + j))
                  for j, n in enumerate(corpus.NAMES[:3])]
        clips += [Clip(caller, "name_recall", "recall", "", codes(base + 40))]
    texts = [corpus.QA_PAIRS[i][2] for i in range(6)] + [corpus.FALLBACK]
    texts += [corpus.name_intro(n)[1] for n in corpus.NAMES[:3]] + [corpus.name_answer(n) for n in corpus.NAMES[:3]]
    replies = {(t, v): codes(1000 + i, 4) for i, t in enumerate(texts) for v in ("arjun", "ravi", "priya", "lakshmi")}
    cfg = S2STrainConfig(**overrides)
    return Composer(clips, replies, {}, corpus.reply_classes(), cfg), replies


def test_the_listener_hears_every_kind_of_turn_with_its_intent():
    import random

    from telugu_s2s.training import corpus

    composer, _ = _composer()
    intent_of = {int(c.codes[0, 0]): c.intent for pool in composer.pools.values() for p in pool.values() for c in p}
    names = {v: k for k, v in corpus.intent_classes().items()}
    rng = random.Random(0)
    seen = set()
    for _ in range(300):
        ex = composer.draw_heard(rng)
        assert names[ex.intent_class] == intent_of[int(ex.user_codes[0, 0])]
        seen.add(names[ex.intent_class].split(":")[0])
        _, dialogue = composer.draw(rng)
        assert names[dialogue.intent_class] == intent_of[int(dialogue.user_codes[0, 0])]
    assert seen == {"qa00", "qa01", "qa02", "qa03", "qa04", "qa05", "ood", "intro", "recall"}


def test_composed_examples_keep_one_caller_and_a_recall_answers_its_introduction():
    import random

    from telugu_s2s.training import corpus

    composer, replies = _composer()
    inv = {v: k for k, v in corpus.reply_classes().items()}
    by_codes = {int(c[0, 0]): t for (t, _), c in replies.items()}
    kinds, sizes = [], []
    rng = random.Random(0)
    for _ in range(400):
        kind, ex = composer.draw(rng)
        kinds.append(kind)
        sizes.append(len(ex.context_turns))
        own = int(ex.user_codes[0, 0])
        tags = [int(u[0, 0]) for u, _ in ex.context_turns]
        assert all((t >= 100) == (own >= 100) for t in tags)  # one caller per dialogue
        assert len(tags) <= 3
        reply = by_codes[int(ex.reply_codes[0, 0])]
        assert inv[ex.aux_class] == reply
        if kind == "name_recall":
            intros = [t for t in tags if t % 100 in (30, 31, 32)]
            assert len(intros) == 1  # exactly its introduction, at a random place
            name = corpus.NAMES[intros[0] % 100 - 30]
            assert reply == corpus.name_answer(name)
        elif kind == "ood":
            assert reply == corpus.FALLBACK
    # every kind is drawn, and contexts of every size, none in about the share asked
    assert set(kinds) == {"qa", "ood", "name_intro", "name_recall"}
    assert set(sizes) == {0, 1, 2, 3}
    none = sum(s == 0 for s in sizes) / len(sizes)
    assert 0.15 < none < 0.35
    # contexts are new on every draw: never one fixed script per question
    firsts = {(int(ex.user_codes[0, 0]), tuple(int(u[0, 0]) for u, _ in ex.context_turns))
              for ex in (composer.draw(rng)[1] for _ in range(200))}
    assert len(firsts) > 150


def test_composed_batches_are_length_bucketed():
    import random

    composer, _ = _composer()
    batches = composer.batches(random.Random(0), 4, n=4)
    assert len(batches) == 4 and all(len(b) == 4 for b in batches)


def test_loader_workers_compose_steps_like_the_loop_each_from_its_own_generator():
    import random

    from telugu_s2s.s2s.config import S2SConfig
    from telugu_s2s.training.s2s_train import StepInputs, _StepSource, _step_inputs_stream

    composer, _ = _composer(batch_size=3, listener_batch=2, recognition_batch=2)
    mcfg = S2SConfig(n_codebooks=2, codebook_size=1024, n_layers=1, d_model=16, n_heads=2, max_seq_len=256,
                     context_budget=32, aux_classes=40, listener_layers=1, listener_dim=16, listener_classes=40,
                     listener_latent_dim=8)
    source = _StepSource(composer, composer.cfg, mcfg, None, 25.0, has_listener=True, has_aux_head=True)

    def fingerprint(inputs: StepInputs) -> tuple:
        return (inputs.batch.tokens.numpy().tobytes(), inputs.heard[0].numpy().tobytes())

    # in the loop: the run's own generator, so the same seed gives the same steps
    loop = [next(it) for it in [_step_inputs_stream(source, random.Random(7), 0)] for _ in range(4)]
    again = _step_inputs_stream(source, random.Random(7), 0)
    assert [fingerprint(s) for s in loop] == [fingerprint(next(again)) for _ in range(4)]
    assert all(s.batch.tokens.shape[0] == 3 and s.heard[0].shape[0] == 2 for s in loop)
    assert all(s.recognition is not None and s.recognition.tokens.shape[0] == 2 for s in loop)
    # in two worker processes: whole steps of the same layout, the workers' draws not repeated
    workers = _StepSource(composer, replace(composer.cfg, loader_workers=2), mcfg, None, 25.0, True, True)
    stream = _step_inputs_stream(workers, random.Random(7), 0)
    steps = [next(stream) for _ in range(8)]
    assert all(isinstance(s, StepInputs) and s.batch.tokens.shape[0] == 3 for s in steps)
    assert len({fingerprint(s) for s in steps}) == 8


def test_the_auxiliary_head_learns_from_the_turn_end_and_generation_ignores_it():
    from telugu_s2s.s2s.model import S2SConfig, S2STransformer, generate
    from telugu_s2s.training.batches import TrainExample, loss, make_batch

    torch.manual_seed(0)
    cfg = S2SConfig(n_codebooks=2, codebook_size=16, n_layers=1, d_model=32, n_heads=2, max_seq_len=128,
                    context_budget=16, aux_classes=5)
    model = S2STransformer(cfg)
    ex = [TrainExample(0, np.full((2, 4), 3), np.full((2, 3), 5), aux_class=2),
          TrainExample(1, np.full((2, 6), 4), np.full((2, 2), 6), aux_class=4)]
    batch = make_batch(cfg, ex)
    # the head reads the position that predicts reply step 0: the SEP after the user turn
    assert batch.aux_position.tolist() == [1 + 4 + 1, 1 + 6 + 1]
    assert batch.tokens[0, 0, batch.aux_position[0]].item() == cfg.sep
    plain, with_aux = loss(model, batch), loss(model, batch, aux_weight=1.0)
    assert with_aux > plain
    # no head targets: the same loss as without the head
    no_targets = make_batch(cfg, [TrainExample(0, np.full((2, 4), 3), np.full((2, 3), 5))])
    assert no_targets.aux_target is None
    # generation is the same with the head's weights zeroed (it never reads them)
    user = np.full((2, 4), 3)
    first = list(generate(model, user, 0))
    with torch.no_grad():
        model.aux_head.weight.zero_()
    assert all(np.array_equal(a, b) for a, b in zip(first, generate(model, user, 0)))


def test_recognition_turns_are_heard_alone_and_train_only_the_reply_class_head():
    import random

    from telugu_s2s.s2s.model import S2SConfig, S2STransformer
    from telugu_s2s.training import corpus
    from telugu_s2s.training.s2s_train import prefix_batch, recognition_loss

    composer, _ = _composer()
    classes = corpus.reply_classes()
    rng = random.Random(0)
    turns = [composer.draw_turn(rng) for _ in range(200)]
    assert all(t.aux_class >= 0 and not t.context_turns and t.reply_codes.shape[1] == 0 for t in turns)
    assert classes[corpus.FALLBACK] in {t.aux_class for t in turns}  # out-of-domain turns too
    assert len({t.aux_class for t in turns}) >= 8 and len({t.voice_index for t in turns}) == 4
    cfg = S2SConfig(n_codebooks=2, codebook_size=1024, n_layers=1, d_model=32, n_heads=2, max_seq_len=256,
                    context_budget=16, aux_classes=len(classes), bidirectional_prefix=True, voice_at_reply=True)
    batch = prefix_batch(cfg, turns[:4])
    for i, t in enumerate(turns[:4]):
        n = t.user_codes.shape[1]
        assert batch.prefix_len[i] == n + 3 and batch.aux_position[i] == n + 2  # [VOICE][SEP][user][SEP]
        assert batch.tokens[i, 0, batch.aux_position[i]] == cfg.sep
    torch.manual_seed(0)
    model = S2STransformer(cfg)
    recognition_loss(model, batch).backward()
    assert model.aux_head.weight.grad.abs().sum() > 0
    assert model.heads.weight.grad is None or model.heads.weight.grad.abs().sum() == 0  # no reply loss


def test_reply_scorer_judges_the_voice_on_the_answer_said(monkeypatch):
    from telugu_s2s.training import evaluate

    rng = np.random.default_rng(0)
    texts, voices = ["a", "b", "c"], ["v1", "v2"]
    # Each (text, voice) reference is its own feature sequence: the text sets the shape, the
    # voice a smaller offset, so text dominates the distance as in log-mel DTW.
    base = {t: rng.normal(0, 3, (20 + 5 * i, 4)) for i, t in enumerate(texts)}
    offset = {"v1": 0.0, "v2": 1.0}
    scorer = object.__new__(evaluate.ReplyScorer)
    scorer.sr = 100
    scorer.feat = {(t, v): base[t] + offset[v] for t in texts for v in voices}
    scorer.seconds = {(t, v): base[t].size / scorer.sr for t in texts for v in voices}
    scorer._index()
    monkeypatch.setattr(evaluate, "_feat", lambda audio, sr: audio)  # the "audio" is already features

    right = scorer.score(base["a"] + 1.0, expected="a", voice="v2")
    assert right["reply_ok"] and right["voice_ok"] and right["voice_ok_expected_answer"]
    # A wrong answer in the requested voice: the voice is right, judged on what it said.
    wrong = scorer.score(base["c"] + 1.0, expected="a", voice="v2")
    assert wrong["nearest"] == "c" and not wrong["reply_ok"] and wrong["voice_ok"]
    assert wrong["duration_ratio_said"] == 1.0 and wrong["duration_ratio"] == round(30 / 20, 3)
    # The same wrong answer in the other voice: the voice is wrong.
    other = scorer.score(base["c"] + 0.0, expected="a", voice="v2")
    assert other["nearest"] == "c" and not other["voice_ok"]
    silent = scorer.score(np.zeros((0, 4)), expected="a", voice="v1")
    assert not silent["voice_ok"] and silent["nearest"] == ""


def test_eval_summary_reports_each_category_with_its_n_and_the_confusions():
    from telugu_s2s.training import corpus
    from telugu_s2s.training.evaluate import categories, summarize

    def row(kind, turn=0, held=False):
        return {"kind": kind, "turn_index": turn, "held_out_phrasing": held}

    def d(r, ok, nearest, expected="x", with_ctx=True, ratio=1.0, intent="", text=""):
        return {"categories": categories(r, with_ctx), "reply_ok": ok, "voice_ok": True, "nearest": nearest,
                "expected": expected, "with_context": with_ctx, "kind": r["kind"], "duration_ratio": ratio,
                "intent": intent, "user_text": text}

    details = [
        d(row("qa"), True, "x"), d(row("qa"), False, corpus.FALLBACK, ratio=1.5),
        d(row("qa", 2), True, "x"), d(row("qa", 0, True), False, "y"),
        d(row("ood", 1), True, corpus.FALLBACK, corpus.FALLBACK),
        d(row("name_recall", 3), True, "n"), d(row("name_recall", 3), False, "m", "n", with_ctx=False),
        d(row("name_intro", 1), False, "", "i"),
        d(row("name_recall", 2, True), False, "m", "n"), d(row("name_intro", 1, True), True, "i", "i"),
    ]
    s = summarize(details, 8, 79)
    # a held-out phrasing one word from a trained one ("ఇవాళ వాతావరణం ఎలా ఉంది?") counts apart
    near = d(row("qa", 0, True), True, "x", intent="qa20", text="బయట వాతావరణం ఎలా ఉంది?")
    split = summarize([*details, near], 8, 79)
    assert split["held_out_phrasing_one_word_from_trained"] == {"accuracy": 1.0, "n": 1}
    assert split["held_out_phrasing_further_from_trained"] == {"accuracy": 0.0, "n": 1}
    cats = s["by_category"]
    assert cats["first_turn"] == {"accuracy": 0.5, "n": 2}
    assert cats["unrelated_context"] == {"accuracy": 1.0, "n": 1}
    assert cats["held_out_phrasing"] == {"accuracy": 0.0, "n": 1}
    assert s["context_accuracy"] == 0.5 and s["context_accuracy_without_context"] == 0.0
    assert cats["name_recall_with_context_seen_phrasing"] == {"accuracy": 1.0, "n": 1}
    assert cats["name_recall_with_context_held_out_phrasing"] == {"accuracy": 0.0, "n": 1}
    assert cats["name_recall_without_context_seen_phrasing"] == {"accuracy": 0.0, "n": 1}
    assert cats["name_intro"] == {"accuracy": 0.5, "n": 2}
    assert cats["name_intro_held_out_phrasing"] == {"accuracy": 1.0, "n": 1}
    assert s["ood_fallback_rate"] == 1.0
    assert s["n"] == 9 and s["no_reply"] == 1
    assert s["in_domain_fallback_rate"] == round(1 / 8, 4)
    assert s["in_domain_fallback_rate_seen_phrasing"] == round(1 / 5, 4)  # the first turn's fallback
    assert s["in_domain_fallback_rate_held_out_phrasing"] == 0.0
    assert s["wrong_answer_rate"] == round(2 / 9, 4)  # "y" for a held-out phrasing, "m" for a recall
    assert s["duration_within_30pct"] == round(7 / 8, 4)  # the silent reply is not timed
    assert s["duration_within_30pct_of_said_answer"] == round(7 / 8, 4)  # no ratio said: the right answer's
    assert s["voice_accuracy"] == s["voice_accuracy_expected_answer"] == 1.0
    assert {"expected": "x", "answered": corpus.FALLBACK, "count": 1} in s["confusions"]


def test_one_word_apart_is_one_word_swapped_added_or_dropped():
    from telugu_s2s.training.corpus import near_a_trained_phrasing, one_word_apart

    assert one_word_apart("బయట వాతావరణం ఎలా ఉంది?", "ఇవాళ వాతావరణం ఎలా ఉంది?")  # swapped
    assert one_word_apart("బస్ స్టాండ్ కి ఎంత దూరం?", "బస్ స్టాండ్ ఎంత దూరం?")  # dropped
    assert not one_word_apart("థాంక్యూ", "ధన్యవాదాలు")  # one word each: nothing shared
    assert not one_word_apart("మీ పరిచయం ఏమిటి?", "మీరు ఎవరండీ?")
    assert not one_word_apart("రైలు ఆలస్యమా?", "రైలు ఎప్పుడు వస్తుంది?")  # two words
    assert near_a_trained_phrasing("qa20", "బయట వాతావరణం ఎలా ఉంది?")
    assert not near_a_trained_phrasing("qa04", "మీ పరిచయం ఏమిటి?")
    assert not near_a_trained_phrasing("qa21", "బయట వాతావరణం ఎలా ఉంది?")  # another question's


def test_decision_steps_are_where_a_reply_parts_from_the_others():
    from telugu_s2s.training.s2s_train import decision_steps, demo_model_config

    mcfg = demo_model_config(62.5, 2, 1024)
    shared = np.array([[5, 6, 7, 8], [1, 2, 3, 4]])
    replies = {
        "a": np.concatenate([shared, [[9, 9], [9, 9]]], axis=1),  # = b up to frame 4 (codebook 0)
        "b": np.concatenate([shared, [[10, 9], [9, 9]]], axis=1),
        "c": np.array([[0, 6, 7], [1, 2, 3]]),  # differs at once
        "d": np.concatenate([shared, [[9, 9], [8, 9]]], axis=1),  # = a up to codebook 1 of frame 4
    }
    steps = decision_steps(mcfg, replies)
    assert steps["c"] == (0,)
    # a vs b: codebook 0 of frame 4 (step 4); a vs d: codebook 1 of frame 4 (step 5, delay 1)
    assert steps["a"] == (0, 4, 5) and steps["b"] == (0, 4) and steps["d"] == (0, 4, 5)


def test_synth_flags_reach_the_synth_config(monkeypatch):
    from telugu_s2s.training import cli
    from telugu_s2s.training import synth as synth_mod

    seen = []
    monkeypatch.setattr(synth_mod, "synth", lambda cfg, progress: seen.append(cfg) or {})
    p = cli.build_parser()
    cli.cmd_synth(p.parse_args(["data", "synth", "--more-callers", "--formant-jitter", "0.1"]))
    cli.cmd_synth(p.parse_args(["data", "synth"]))
    more, plain = seen
    assert more.jitter_formant == 0.1 and plain.jitter_formant == 0.0
    assert len(more.callers) == (len(synth_mod.CALLER_VOICES) + len(synth_mod.MORE_CALLER_VOICES)
                                 + len(synth_mod.MORE_HELD_OUT_VOICES))
    assert more.held_out == synth_mod.held_out_with_more(synth_mod.HELD_OUT_CALLERS)
    assert plain.callers == synth_mod.CALLER_VOICES


def test_all_trains_s2s_on_the_richer_corpus_and_the_codec_on_the_default_one(tmp_path, monkeypatch):
    from telugu_s2s.training import cli

    calls, variants = [], []

    def record(name):
        def fn(args, *rest, **kw):
            calls.append((name, Path(args.data_dir), getattr(args, "more_callers", None),
                          getattr(args, "formant_jitter", None), kw.get("codec_data_dir")))
            variants.append(getattr(args, "variants", None))
            return {}
        return fn

    for name in ("cmd_synth", "cmd_codec", "cmd_encode", "cmd_s2s", "cmd_eval", "cmd_export"):
        monkeypatch.setattr(cli, name, record(name))
    data = tmp_path / "d"
    cli.cmd_all(cli.build_parser().parse_args(["all", "--data-dir", str(data), "--no-progress"]))
    assert calls == [
        ("cmd_synth", data, False, 0.0, None),
        ("cmd_codec", data, False, 0.0, None),
        ("cmd_codec", data, False, 0.0, None),  # the harmonic decoder on the codec's codes
        ("cmd_synth", data / "s2s", True, 0.1, None),
        ("cmd_encode", data / "s2s", True, 0.1, None),
        ("cmd_s2s", data / "s2s", True, 0.1, None),
        ("cmd_eval", data / "s2s", True, 0.1, None),
        ("cmd_export", data / "s2s", True, 0.1, data),
    ]
    assert variants == [1, 1, 1, 3, 3, 3, 3, 3]  # the codec corpus one clip each, the S2S corpus three

    calls.clear()
    cli.cmd_all(cli.build_parser().parse_args(
        ["all", "--data-dir", str(data), "--s2s-callers", "default", "--s2s-formant-jitter", "0",
         "--s2s-variants", "1"]))
    assert [c[0] for c in calls] == ["cmd_synth", "cmd_codec", "cmd_codec", "cmd_encode", "cmd_s2s", "cmd_eval",
                                     "cmd_export"]
    assert {c[1] for c in calls} == {data}


def test_manifest_names_the_codec_corpus_when_it_differs(tmp_path):
    import argparse

    from telugu_s2s.training import cli

    for sub, version in (("codec_corpus", "telugu-synth-codec"), ("s2s_corpus", "telugu-synth-s2s")):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "data_info.json").write_text(json.dumps({"data_version": version, "counts": {"files": 1}}))
    models = tmp_path / "models"
    for sub in ("codec", "s2s"):
        (models / sub).mkdir(parents=True)
        (models / sub / "model.pt").write_bytes(b"w")
    args = argparse.Namespace(models_dir=models, data_dir=tmp_path / "s2s_corpus", triton_repo=None)
    cli.cmd_export(args, {"n": 1}, {}, "cmd", codec_data_dir=tmp_path / "codec_corpus")
    doc = json.loads((models / "MANIFEST.json").read_text())
    assert doc["data_version"] == "telugu-synth-s2s" and doc["codec_data_version"] == "telugu-synth-codec"
    cli.cmd_export(args, {"n": 1}, {}, "cmd", codec_data_dir=tmp_path / "s2s_corpus")
    assert "codec_data_version" not in json.loads((models / "MANIFEST.json").read_text())


def test_served_eval_speaks_every_dialogue_and_each_recall_again_alone():
    from telugu_s2s.training.served_eval import dialogues

    def row(did, i, kind):
        return {"dialogue_id": did, "turn_index": i, "kind": kind}

    rows = [row("d2", 1, "name_recall"), row("d1", 0, "qa"), row("d2", 0, "name_intro"), row("d2", 2, "qa")]
    calls = dialogues(rows)
    assert [([r["turn_index"] for r in turns], ctx) for turns, ctx in calls] == [
        ([0], True), ([0, 1, 2], True), ([1], False)]
    assert calls[2][0][0]["kind"] == "name_recall"


def test_product_cli_reaches_every_training_stage(monkeypatch):
    from telugu_s2s.cli import main as product
    from telugu_s2s.training import cli

    seen = []
    monkeypatch.setattr(cli, "main", lambda argv: seen.append(argv) or 0)
    for argv in (["train", "all", "--s2s-steps", "5"], ["train", "encode"], ["train", "export"], ["train", "s2s"],
                 ["eval", "--served"], ["data", "synth"]):
        assert product.main(argv) == 0
    assert seen == [["all", "--s2s-steps", "5"], ["encode"], ["export"], ["train", "s2s"], ["eval", "--served"],
                    ["data", "synth"]]
    # and the real parser accepts what they become
    p = cli.build_parser()
    assert p.parse_args(["all", "--s2s-steps", "5"]).s2s_steps == 5
    assert p.parse_args(["eval", "--served", "--target", "h:1"]).served


def test_encode_reuses_the_codes_of_the_same_codec_only(tiny_data, tiny_codec, tmp_path, monkeypatch):
    from telugu_s2s.training import encode as enc

    cfg, _ = tiny_codec
    out = enc.encode_corpus(tiny_data, cfg.out_dir, out=tmp_path / "codes.npz", progress=False)
    first = enc.load_codes(out)
    calls = []
    real = enc.codec_codes
    monkeypatch.setattr(enc, "codec_codes", lambda *a: calls.append(1) or real(*a))
    enc.encode_corpus(tiny_data, cfg.out_dir, out=out, progress=False)
    again = enc.load_codes(out)
    assert calls == [] and set(again) == set(first)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    (tmp_path / "codes.codec").write_text("another-codec@0123")  # made by another codec: encode anew
    enc.encode_corpus(tiny_data, cfg.out_dir, out=out, progress=False)
    assert len(calls) == len(first)


def test_counts_below_one_are_refused_with_a_clear_message(capsys):
    from telugu_s2s.training.cli import build_parser

    p = build_parser()
    for argv in (["data", "synth", "--variants", "0"], ["all", "--s2s-variants", "-1"],
                 ["eval", "--served", "--concurrency", "0"], ["data", "synth", "--variants", "x"]):
        with pytest.raises(SystemExit) as exit_:
            p.parse_args(argv)
        assert exit_.value.code == 2
    assert "must be >= 1" in capsys.readouterr().err


def test_eval_context_holds_the_models_own_earlier_replies_unless_asked_for_the_references(
    tiny_data, tiny_codec, tmp_path, monkeypatch
):
    """A served call's context holds what the model answered; offline eval does the same by
    default (a reference reply would hand a name recall its name), every earlier turn included
    when a stride skips it."""
    from telugu_s2s.training import evaluate
    from telugu_s2s.training.encode import encode_corpus, load_codes
    from telugu_s2s.training.s2s_train import S2STrainConfig, train_s2s

    cfg, _ = tiny_codec
    codes = load_codes(encode_corpus(tiny_data, cfg.out_dir, progress=False))
    s2s_cfg = S2STrainConfig(data_dir=tiny_data, codec_dir=cfg.out_dir, run_dir=tmp_path / "run",
                             out_dir=tmp_path / "s2s", steps=1, batch_size=2, progress=False,
                             listener_pretrain=2, listener_batch=2,
                             model={"n_layers": 1, "d_model": 32, "n_heads": 2, "max_reply_frames": 64, **SMALL_LISTENER})
    train_s2s(s2s_cfg)
    calls: list[tuple[np.ndarray, list]] = []

    def fake_generate(model, user, voice, ctx, k, max_frames):
        out = np.full((k, 3), len(calls) % 7, dtype=np.int64)  # each reply its own codes
        calls.append((user, ctx, out))
        return out

    monkeypatch.setattr(evaluate, "_generate", fake_generate)
    rows = evaluate.synth.read_jsonl(tiny_data / "splits" / "test.jsonl")
    later = [r for r in rows if r["turn_index"] >= 2]
    assert later, "the tiny test split has a dialogue of three turns or more"
    base = evaluate.EvalConfig(data_dir=tiny_data, codec_dir=cfg.out_dir, s2s_dir=s2s_cfg.out_dir,
                               split="test", max_frames=12, progress=False, turn_stride=2)
    for mode in ("generated", "reference"):
        calls.clear()
        res = evaluate.eval_s2s(replace(base, context_replies=mode))
        assert res["context_replies"] == mode
        replies = [out for _, _, out in calls]
        assert any(ctx for _, ctx, _ in calls)
        for _, ctx, _ in calls:
            for user, reply in ctx:
                if mode == "generated":
                    assert any(reply is r for r in replies)  # one of the model's own replies
                else:
                    assert any(np.array_equal(reply, c[: reply.shape[0]]) for c in codes.values() if c.shape == reply.shape)
        if mode == "generated":  # the stride skipped turns, and their replies were generated anyway
            assert len(calls) > len(res["details"])
        else:
            assert len(calls) == len(res["details"])
    with pytest.raises(ValueError, match="context_replies"):
        evaluate.eval_s2s(replace(base, context_replies="oracle"))
