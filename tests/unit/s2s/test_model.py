import dataclasses

import numpy as np
import pytest
import torch

from telugu_s2s.s2s import model as m
from telugu_s2s.training import batches as tb
from telugu_s2s.s2s.decoding import DecodeEngine, ReplyStream
from telugu_s2s.s2s.protocol import GenerationParams, context_from_turns


def codes(rng, cfg, n):
    return rng.integers(0, cfg.codebook_size, size=(cfg.n_codebooks, n))


def test_forward_shapes(cfg, model, rng):
    ex = [
        tb.TrainExample(0, codes(rng, cfg, 7), codes(rng, cfg, 5)),
        tb.TrainExample(3, codes(rng, cfg, 4), codes(rng, cfg, 9), [(codes(rng, cfg, 6), codes(rng, cfg, 3))]),
    ]
    batch = tb.make_batch(cfg, ex)
    b, k, length = batch.tokens.shape
    assert (b, k) == (2, cfg.n_codebooks)
    logits = model(batch.tokens, batch.voice)
    assert logits.shape == (2, cfg.n_codebooks, length, cfg.out_vocab)
    assert batch.targets.shape == batch.tokens.shape == batch.loss_mask.shape
    # trained positions: every reply code plus one EOS per example
    assert int(batch.loss_mask.sum()) == cfg.n_codebooks * (5 + 9) + 2
    value = tb.loss(model, batch)
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    assert model.heads.weight.grad is not None


def test_decision_steps_weigh_more_in_the_loss(cfg, model, rng):
    user, reply = codes(rng, cfg, 4), codes(rng, cfg, 6)
    plain = tb.make_batch(cfg, [tb.TrainExample(0, user, reply)])
    assert plain.loss_weight is None
    weighted = tb.make_batch(cfg, [tb.TrainExample(0, user, reply, decision_steps=(0, 3), decision_weight=10.0)])
    w, mask = weighted.loss_weight[0], weighted.loss_mask[0]
    start = int(np.flatnonzero(mask[0].numpy())[0])
    assert torch.all((w > 0) == mask)
    assert w[0, start] == 10.0 and w[0, start + 3] == 10.0 and w[0, start + 1] == 1.0
    assert int((w == 10.0).sum()) == 2 + int(mask[1:, [start, start + 3]].sum())  # every codebook trained there
    # the loss is the weighted mean of the per-position cross-entropy
    logits = model(weighted.tokens, weighted.voice)
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), weighted.targets.reshape(-1),
                                           reduction="none").reshape(weighted.loss_weight.shape)
    expect = (ce[0] * w).sum() / w.sum()
    assert torch.allclose(tb.loss(model, weighted), expect)
    assert torch.allclose(tb.loss(model, plain), ce[0][mask].mean())


def test_teacher_forcing_targets_are_next_inputs(cfg, rng):
    user, reply = codes(rng, cfg, 6), codes(rng, cfg, 4)
    inputs, targets, mask = tb.make_example_arrays(cfg, tb.TrainExample(1, user, reply))
    grid, gmask = m.delayed_reply(cfg, reply)
    assert np.array_equal(m.undelay(cfg, grid, 4), reply)
    p = inputs.shape[1] - (grid.shape[1] - 1)
    # a target at position i is the input at position i + 1 (where it is trained)
    full = np.concatenate([inputs, grid[:, -1:]], axis=1)
    assert np.array_equal(full[:, p:], grid)
    for q in range(cfg.n_codebooks):
        for i in np.flatnonzero(mask[q]):
            nxt = full[q, i + 1]
            expect = cfg.codebook_size if nxt == cfg.eos else nxt
            assert targets[q, i] == expect
    assert inputs[0, p - 1] == cfg.sep and inputs[0, 0] == cfg.voice


def test_kv_cache_matches_full_forward(cfg, model, rng):
    prefix = m.build_prefix(cfg, codes(rng, cfg, 9))
    grid, _ = m.delayed_reply(cfg, codes(rng, cfg, 12))
    seq = np.concatenate([prefix, grid[:, :-1]], axis=1)
    tokens = torch.from_numpy(seq)
    full = model(tokens[None], torch.tensor([2]))[0]  # [K, L, V+1]
    cache = m.KVCache(cfg, slots=1)
    p = prefix.shape[1]
    first = model.prefill(torch.from_numpy(prefix), 2, cache, 0)
    torch.testing.assert_close(first, full[:, p - 1], atol=1e-5, rtol=1e-4)
    for pos in range(p, seq.shape[1]):
        step = model.decode_step(tokens[:, pos][None], torch.tensor([pos]), cache)[0]
        torch.testing.assert_close(step, full[:, pos], atol=1e-5, rtol=1e-4)


def test_batched_decode_matches_single_streams(cfg, model, rng):
    """Streams with different prefix lengths stepped as one batch = each stepped alone."""
    params = GenerationParams(max_frames=10, frames_per_response=3)
    prefixes = [m.build_prefix(cfg, codes(rng, cfg, n)) for n in (3, 11, 6)]

    def run(prefix_list, voice_list):
        engine = DecodeEngine(model, initial_slots=1)
        streams = [ReplyStream(cfg, p, v, params) for p, v in zip(prefix_list, voice_list)]
        for s in streams:
            engine.add(s)
        while len(engine):
            engine.step()
        return [np.concatenate(s.pop_blocks(), axis=1) for s in streams]

    together = run(prefixes, [0, 1, 2])
    alone = [run([p], [v])[0] for p, v in zip(prefixes, [0, 1, 2])]
    for a, b in zip(together, alone):
        assert np.array_equal(a, b)


def test_voice_changes_logits(cfg, model, rng):
    tokens = torch.from_numpy(m.build_prefix(cfg, codes(rng, cfg, 5)))[None]
    a = model(tokens, torch.tensor([0]))
    b = model(tokens, torch.tensor([3]))
    assert not torch.allclose(a[:, :, -1], b[:, :, -1], atol=1e-4)


def test_context_budget_keeps_newest(cfg, rng):
    turns = [(np.full((2, 10), 2 * i), np.full((2, 10), 2 * i + 1)) for i in range(6)]
    ctx_codes, ctx_seg = context_from_turns(turns, cfg.n_codebooks)
    ctx = m.build_context(cfg, ctx_codes, ctx_seg)
    assert ctx.shape == (cfg.n_codebooks, cfg.context_budget)
    kept = set(int(x) for x in ctx[0] if x < cfg.codebook_size)
    # 24 positions / (1 marker + 5 strided tokens) = 4 segments: the newest two turns
    assert kept == {8, 9, 10, 11}
    assert ctx[0, -6] == cfg.reply_turn and ctx[0, -12] == cfg.user_turn
    assert np.all(ctx[1][ctx[0] < cfg.codebook_size] == cfg.pad)


def test_context_cuts_the_segment_at_the_budget_keeping_its_end(cfg):
    user = np.arange(40).reshape(1, 40).repeat(2, 0) % cfg.codebook_size
    reply = np.zeros((2, 4), int)
    ctx_codes, ctx_seg = context_from_turns([(user, reply)], 2)
    ctx = m.build_context(cfg, ctx_codes, ctx_seg)
    assert ctx.shape[1] == cfg.context_budget
    # reply: marker + 2 tokens; user: marker + the newest 20 of its 20 strided tokens... cut
    user_part = ctx[0, 1 : ctx.shape[1] - 3]
    strided = (np.arange(40) % cfg.codebook_size)[::2]
    assert np.array_equal(user_part, strided[-len(user_part):])


def test_context_only_last_ten_turns(cfg):
    big = dataclasses.replace(cfg, context_budget=100, max_seq_len=256)
    turns = [(np.full((2, 2), i), np.full((2, 2), i)) for i in range(12)]
    ctx_codes, ctx_seg = context_from_turns(turns, 2)
    ctx = m.build_context(big, ctx_codes, ctx_seg)
    kept = set(int(x) for x in ctx[0] if x < big.codebook_size)
    assert kept == set(range(2, 12))


def test_bad_inputs_are_clear_errors(cfg, model, rng):
    with pytest.raises(ValueError, match="codebooks"):
        m.build_prefix(cfg, np.zeros((1, 5), int))
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        m.build_prefix(cfg, np.full((2, 5), 99))
    with pytest.raises(ValueError, match="sum to"):
        m.build_context(cfg, np.zeros((2, 5), int), np.array([2, 2]))
    with pytest.raises(ValueError, match="at most"):
        m.build_prefix(cfg, np.zeros((2, 500), int))
    with pytest.raises(ValueError, match="voice index"):
        list(m.generate(model, codes(rng, cfg, 4), 7))
    with pytest.raises(ValueError, match="temperature"):
        m.generate(model, codes(rng, cfg, 4), 0, params=GenerationParams(temperature=-1))


def test_generate_blocks_and_stops(cfg, model, rng):
    params = GenerationParams(max_frames=9, frames_per_response=4)
    blocks = list(m.generate(model, codes(rng, cfg, 5), 1, params=params))
    assert all(b.shape[0] == cfg.n_codebooks and b.dtype == np.int32 for b in blocks)
    sizes = [b.shape[1] for b in blocks]
    assert all(n == 4 for n in sizes[:-1]) and 1 <= sizes[-1] <= 4
    total = sum(sizes)
    assert 1 <= total <= 9
    allc = np.concatenate(blocks, axis=1)
    assert allc.min() >= 0 and allc.max() < cfg.codebook_size


def test_blocks_grow_to_max_frames_per_response_with_the_same_frames(cfg, rng):
    torch.manual_seed(0)
    model = m.S2STransformer(cfg).eval()
    with torch.no_grad():
        model.heads.bias[cfg.codebook_size] = -100.0  # no EOS: the reply runs to max_frames
    user = codes(rng, cfg, 5)
    fixed = list(m.generate(model, user, 0, params=GenerationParams(max_frames=40, frames_per_response=2)))
    grow = GenerationParams(max_frames=40, frames_per_response=2, max_frames_per_response=8)
    growing = list(m.generate(model, user, 0, params=grow))
    total = sum(b.shape[1] for b in fixed)
    assert total == min(40, cfg.max_reply_frames) and total > 14
    sizes = [b.shape[1] for b in growing]
    assert sizes[:3] == [2, 4, 8] and all(n == 8 for n in sizes[3:-1]) and 1 <= sizes[-1] <= 8
    assert np.array_equal(np.concatenate(fixed, axis=1), np.concatenate(growing, axis=1))
    with pytest.raises(ValueError, match="max_frames_per_response"):
        m.generate(model, user, 0, params=GenerationParams(frames_per_response=4, max_frames_per_response=2))


def test_generate_greedy_deterministic_and_eos(cfg, rng):
    torch.manual_seed(0)
    model = m.S2STransformer(cfg).eval()
    # force EOS after 3 frames by biasing the codebook-0 head: EOS wins once s >= 1
    with torch.no_grad():
        model.heads.bias.zero_()
        model.heads.bias[cfg.codebook_size] = 100.0
    blocks = list(m.generate(model, codes(rng, cfg, 5), 0, params=GenerationParams(max_frames=30)))
    assert sum(b.shape[1] for b in blocks) == 1  # EOS is masked at step 0 only


def test_sampling_seed_reproducible(cfg, model, rng):
    user = codes(rng, cfg, 6)
    p = lambda seed: GenerationParams(max_frames=20, temperature=1.0, top_k=5, seed=seed)  # noqa: E731
    a = np.concatenate(list(m.generate(model, user, 2, params=p(7))), axis=1)
    b = np.concatenate(list(m.generate(model, user, 2, params=p(7))), axis=1)
    c = np.concatenate(list(m.generate(model, user, 2, params=p(8))), axis=1)
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_should_stop_cancels_within_one_step(cfg, model, rng):
    calls = []

    def stop():
        calls.append(1)
        return len(calls) >= 3

    params = GenerationParams(max_frames=40, frames_per_response=1)
    # suppress EOS so only the cancel can end it early
    with torch.no_grad():
        model.heads.bias[cfg.codebook_size] = -100.0
    blocks = list(m.generate(model, codes(rng, cfg, 5), 0, params=params, should_stop=stop))
    assert len(calls) == 3
    # steps run: prefill (1) + 2 decode steps = 3 columns -> 3 - K + 1 = 2 frames
    assert sum(b.shape[1] for b in blocks) == 3 - cfg.n_codebooks + 1


def test_checkpoint_roundtrip(cfg, model, tmp_path):
    m.save_checkpoint(model, cfg, tmp_path / "ck", {"name": "tiny"})
    loaded = m.load_checkpoint(tmp_path / "ck")
    assert loaded.cfg == cfg and not loaded.random
    assert loaded.weights_id.startswith("tiny@")
    for a, b in zip(model.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)


def test_random_weights_need_the_flag(cfg, tmp_path, caplog):
    with pytest.raises(FileNotFoundError, match="TS2S_S2S_ALLOW_RANDOM_WEIGHTS"):
        m.load_model(tmp_path / "missing")
    with caplog.at_level("WARNING"):
        loaded = m.load_model(tmp_path / "missing", allow_random=True, random_cfg=cfg)
    assert loaded.random and loaded.weights_id == "random"
    assert "RANDOM" in caplog.text


LISTENING = dict(acoustic_dim=8, voice_at_reply=True, bidirectional_prefix=True)


@pytest.fixture
def listening(cfg, rng):
    lcfg = dataclasses.replace(cfg, **LISTENING)
    torch.manual_seed(0)
    net = m.S2STransformer(lcfg).eval()
    net.set_code_vectors(rng.normal(size=(lcfg.n_codebooks, lcfg.codebook_size, lcfg.acoustic_dim)))
    return lcfg, net


def test_listening_options_keep_the_kv_cache_exact(listening, rng):
    cfg, model = listening
    prefix = m.build_prefix(cfg, codes(rng, cfg, 9), *context_from_turns([(codes(rng, cfg, 5), codes(rng, cfg, 4))],
                                                                         cfg.n_codebooks))
    grid, _ = m.delayed_reply(cfg, codes(rng, cfg, 12))
    seq = np.concatenate([prefix, grid[:, :-1]], axis=1)
    tokens = torch.from_numpy(seq)
    p = prefix.shape[1]
    full = model(tokens[None], torch.tensor([1]), torch.tensor([p]))[0]
    cache = m.KVCache(cfg, slots=1)
    torch.testing.assert_close(model.prefill(torch.from_numpy(prefix), 1, cache, 0), full[:, p - 1],
                               atol=1e-5, rtol=1e-4)
    for pos in range(p, seq.shape[1]):
        step = model.decode_step(tokens[:, pos][None], torch.tensor([pos]), cache)[0]
        torch.testing.assert_close(step, full[:, pos], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="prefix_len"):
        model(tokens[None], torch.tensor([1]))


def test_bidirectional_prefix_reads_later_user_frames_and_reply_stays_causal(listening, rng):
    cfg, model = listening
    user = codes(rng, cfg, 8)
    prefix = m.build_prefix(cfg, user)
    grid, _ = m.delayed_reply(cfg, codes(rng, cfg, 6))
    seq = torch.from_numpy(np.concatenate([prefix, grid[:, :-1]], axis=1))[None]
    p = torch.tensor([prefix.shape[1]])
    changed = seq.clone()
    changed[0, :, p - 3] = (changed[0, :, p - 3] + 1) % cfg.codebook_size  # a late user frame
    a, b = model(seq, torch.tensor([0]), p)[0], model(changed, torch.tensor([0]), p)[0]
    assert not torch.allclose(a[:, 2], b[:, 2], atol=1e-5)  # an early user frame sees it
    later = seq.clone()
    later[0, :, -1] = (later[0, :, -1] + 1) % cfg.codebook_size  # the last reply input
    c = model(later, torch.tensor([0]), p)[0]
    torch.testing.assert_close(a[:, :-1], c[:, :-1])  # nothing before it does


def test_code_vectors_travel_with_the_checkpoint_and_are_checked(listening, tmp_path):
    cfg, model = listening
    m.save_checkpoint(model, cfg, tmp_path / "ck", {"name": "listening"})
    loaded = m.load_checkpoint(tmp_path / "ck")
    assert torch.equal(loaded.model.code_vectors, model.code_vectors)
    assert torch.count_nonzero(model.code_vectors[:, cfg.codebook_size:]) == 0  # special tokens
    with pytest.raises(ValueError, match="code vectors must be"):
        model.set_code_vectors(np.zeros((cfg.n_codebooks, cfg.codebook_size, cfg.acoustic_dim + 1)))
    batch = tb.make_batch(cfg, [tb.TrainExample(0, np.zeros((2, 4), np.int64), np.ones((2, 3), np.int64))])
    tb.loss(model.train(), batch).backward()
    assert model.acoustic_proj.weight.grad is not None and not model.code_vectors.requires_grad


@pytest.fixture(params=[False, True], ids=["at-reply", "every-step"])
def with_listener(cfg, rng, request):
    lcfg = dataclasses.replace(
        cfg,
        listener_layers=2,
        listener_dim=16,
        listener_latent_dim=8,
        listener_classes=5,
        listener_every_step=request.param,
    )
    torch.manual_seed(0)
    net = m.S2STransformer(lcfg)
    torch.nn.init.normal_(net.listener.out.weight, std=0.5)  # built silent; make it speak
    if net.listener.steer is not None:
        torch.nn.init.normal_(net.listener.steer.weight, std=0.5)
    net.set_code_vectors(rng.normal(size=(lcfg.n_codebooks, lcfg.codebook_size, 8)))
    return lcfg, net.eval()


def test_listener_keeps_the_kv_cache_exact_and_batches_like_one(with_listener, rng):
    cfg, model = with_listener
    ctx = context_from_turns([(codes(rng, cfg, 5), codes(rng, cfg, 4))], cfg.n_codebooks)
    seqs, plens = [], []
    for n_user, n_reply in ((9, 12), (3, 5)):
        prefix = m.build_prefix(cfg, codes(rng, cfg, n_user), *ctx)
        grid, _ = m.delayed_reply(cfg, codes(rng, cfg, n_reply))
        seqs.append(np.concatenate([prefix, grid[:, :-1]], axis=1))
        plens.append(prefix.shape[1])
    length = max(s.shape[1] for s in seqs)
    batch = np.full((2, cfg.n_codebooks, length), cfg.pad, np.int64)
    for i, s in enumerate(seqs):
        batch[i, :, : s.shape[1]] = s
    full = model(torch.from_numpy(batch), torch.tensor([1, 2]), torch.tensor(plens))
    for i, (seq, p) in enumerate(zip(seqs, plens)):
        alone = model(torch.from_numpy(seq)[None], torch.tensor([i + 1]), torch.tensor([p]))[0]
        torch.testing.assert_close(full[i, :, : seq.shape[1]], alone, atol=1e-5, rtol=1e-4)
        cache = m.KVCache(cfg, slots=1)
        tokens = torch.from_numpy(seq)
        torch.testing.assert_close(model.prefill(tokens[:, :p], i + 1, cache, 0), alone[:, p - 1],
                                   atol=1e-5, rtol=1e-4)
        for pos in range(p, seq.shape[1]):
            step = model.decode_step(tokens[:, pos][None], torch.tensor([pos]), cache)[0]
            torch.testing.assert_close(step, alone[:, pos], atol=1e-5, rtol=1e-4)


def test_listener_streams_batched_and_moved_decode_as_each_alone(with_listener, rng):
    """Each stream's listener vector follows it through the cache: streams of different user
    turns and lengths stepped together (the cache grows, finished streams' slots are refilled
    by `move`) = each stepped alone."""
    cfg, model = with_listener
    prefixes = [m.build_prefix(cfg, codes(rng, cfg, n)) for n in (3, 11, 6)]
    params = [GenerationParams(max_frames=f, frames_per_response=2) for f in (3, 9, 6)]

    def run(indices):
        engine = DecodeEngine(model, initial_slots=1)
        streams = [ReplyStream(cfg, prefixes[i], i % cfg.n_voices, params[i]) for i in indices]
        for s in streams:
            engine.add(s)
        while len(engine):
            engine.step()
        return [np.concatenate(s.pop_blocks(), axis=1) for s in streams]

    together = run([0, 1, 2])
    for i, got in enumerate(together):
        assert np.array_equal(got, run([i])[0])
    if cfg.listener_every_step:  # the vector steers: without it the replies differ
        torch.nn.init.zeros_(model.listener.steer.weight)
        torch.nn.init.zeros_(model.listener.steer.bias)
        assert any(not np.array_equal(a, b) for a, b in zip(together, run([0, 1, 2])))


def test_listener_hears_the_user_turn_not_the_context_and_is_loudness_blind(with_listener, rng):
    cfg, model = with_listener
    user = codes(rng, cfg, 10)
    turn = [(codes(rng, cfg, 5), codes(rng, cfg, 4))]
    tokens = torch.from_numpy(m.build_prefix(cfg, user, *context_from_turns(turn, cfg.n_codebooks)))
    first_sep = int((tokens[0] == cfg.sep).nonzero()[0, 0])
    vec, _ = model.listen(tokens[None], torch.tensor([first_sep + 1]), torch.tensor([tokens.shape[1] - 1]))
    alone, _ = model.listen(torch.from_numpy(user)[None], torch.tensor([0]), torch.tensor([user.shape[1]]))
    torch.testing.assert_close(vec, alone)
    other = codes(rng, cfg, 10)
    changed, _ = model.listen(torch.from_numpy(other)[None], torch.tensor([0]), torch.tensor([10]))
    assert not torch.allclose(changed, alone, atol=1e-4)
    # The turn's latent is normalized over its frames: scaling and shifting every codebook
    # vector (a louder or brighter line, in this toy) leaves what the listener hears unchanged.
    saved = model.code_vectors.clone()
    model.code_vectors.mul_(3.0).add_(0.5)
    scaled, _ = model.listen(torch.from_numpy(user)[None], torch.tensor([0]), torch.tensor([10]))
    model.code_vectors.copy_(saved)
    torch.testing.assert_close(scaled, alone, atol=1e-3, rtol=1e-3)


def test_listener_head_trains_and_a_new_listener_leaves_the_model_answering_as_before(cfg, rng, tmp_path):
    lcfg = dataclasses.replace(cfg, listener_layers=1, listener_dim=16, listener_latent_dim=8, listener_classes=5)
    torch.manual_seed(0)
    plain = m.S2STransformer(cfg).eval()
    torch.manual_seed(1)
    heard = m.S2STransformer(lcfg)
    heard.set_code_vectors(rng.normal(size=(2, cfg.codebook_size, 8)))
    heard.load_state_dict(plain.state_dict(), strict=False)
    heard.eval()
    prefix = torch.from_numpy(m.build_prefix(cfg, codes(rng, cfg, 7)))
    p = torch.tensor([prefix.shape[1]])
    torch.testing.assert_close(heard(prefix[None], torch.tensor([0]), p), plain(prefix[None], torch.tensor([0])))
    ex = tb.TrainExample(0, codes(rng, cfg, 6), codes(rng, cfg, 3), intent_class=3)
    heard.train()
    tb.loss(heard, tb.make_batch(lcfg, [ex]), listener_weight=0.5).backward()
    assert heard.listener.head.weight.grad is not None and heard.listener.head.weight.grad.abs().sum() > 0
    tokens, lens, target = tb.user_batch(lcfg, [ex, tb.TrainExample(0, codes(rng, cfg, 2), codes(rng, cfg, 1))])
    assert tokens.shape == (2, 2, 6) and lens.tolist() == [6, 2] and target.tolist() == [3, -1]
    assert torch.isfinite(tb.listener_loss(heard, (tokens, lens, target)))
    with pytest.raises(ValueError, match="listener_latent_dim"):
        dataclasses.replace(cfg, listener_layers=1)


def test_the_listeners_ctc_head_learns_to_spell_and_generation_does_not_read_it(cfg, rng):
    lcfg = dataclasses.replace(
        cfg, listener_layers=1, listener_dim=16, listener_latent_dim=8, listener_classes=5, listener_ctc_symbols=7
    )
    with pytest.raises(ValueError, match="listener_ctc_symbols"):
        dataclasses.replace(cfg, listener_ctc_symbols=7)
    torch.manual_seed(0)
    model = m.S2STransformer(lcfg)
    model.set_code_vectors(rng.normal(size=(2, cfg.codebook_size, 8)))
    spelled = [np.array([1, 2, 3, 2]), np.array([4, 5]), None]  # the third turn has no spelling
    turns = [
        tb.TrainExample(0, codes(rng, cfg, 24), codes(rng, cfg, 0), intent_class=1, user_labels=spelled[0]),
        tb.TrainExample(0, codes(rng, cfg, 16), codes(rng, cfg, 0), intent_class=2, user_labels=spelled[1]),
        tb.TrainExample(0, codes(rng, cfg, 12), codes(rng, cfg, 0), intent_class=3),
    ]
    heard = (*tb.user_batch(lcfg, turns), *tb.ctc_targets(turns))
    labels, label_lens = heard[3:]
    assert labels.tolist() == [[1, 2, 3, 2], [4, 5, 0, 0], [0, 0, 0, 0]] and label_lens.tolist() == [4, 2, 0]
    # two outputs per listener position: 24 frames -> 6 positions -> 12 outputs
    log_probs, out_lens = model.heard_ctc(heard[0][:1], heard[1][:1])
    assert log_probs.shape == (12, 1, 7) and out_lens.tolist() == [12]
    plain = tb.listener_loss(model, heard)
    with_ctc = tb.listener_loss(model, heard, ctc_weight=1.0)
    assert torch.isfinite(with_ctc) and with_ctc > plain
    with_ctc.backward()
    assert model.listener.ctc.weight.grad.abs().sum() > 0
    # Generation reads the listener's pooled vector only: the CTC head changes no reply.
    model.eval()
    prefix = torch.from_numpy(m.build_prefix(cfg, codes(rng, cfg, 7)))[None]
    p = torch.tensor([prefix.shape[2]])
    before = model(prefix, torch.tensor([0]), p)
    with torch.no_grad():
        model.listener.ctc.weight.normal_()
    torch.testing.assert_close(model(prefix, torch.tensor([0]), p), before)
