import torch
from encodec.quantization.core_vq import EuclideanCodebook

from telugu_s2s.training.quantizer import FixedEuclideanCodebook, fix_quantizer


def _book(cls, size=16, dim=4):
    torch.manual_seed(0)
    cb = EuclideanCodebook(dim=dim, codebook_size=size, kmeans_init=False, decay=0.9, threshold_ema_dead_code=2)
    cb.__class__ = cls
    return cb.train()


def test_upstream_restart_is_undone_by_the_ema_update():
    """Documents bug 1: codes restarted by the upstream class are overwritten in the same step."""
    cb = _book(EuclideanCodebook)
    data = torch.randn(64, 4) + 50.0  # far away from every initial code
    before = cb.embed.clone()
    cb(data)
    moved = (cb.embed - before).norm(dim=1) > 1.0
    # the upstream class restarts all codes (cluster_size 0 < 2) but the EMA step puts
    # most of them back near the old values, far from the data
    assert (cb.embed - 50.0).abs().mean(1).lt(5.0).sum() < 16
    assert moved.sum() <= 16


def test_fixed_restart_survives_and_moves_dead_codes_to_the_data():
    cb = _book(FixedEuclideanCodebook)
    cb.inited.fill_(1.0)
    cb.restart_threshold, cb.restart_count = 0.5, 1.0
    data = torch.randn(64, 4) + 50.0
    cb(data)
    assert cb.last_restarts > 0
    # every code is now near the data
    assert (cb.embed - 50.0).abs().mean(1).lt(5.0).all()
    # and stays there after another update (the EMA state was reset with it)
    cb(data)
    assert (cb.embed - 50.0).abs().mean(1).lt(5.0).all()


def test_fixed_init_fills_every_code_even_from_a_small_batch():
    cb = _book(FixedEuclideanCodebook, size=32)
    cb.inited.fill_(0.0)
    data = torch.randn(8, 4)  # fewer vectors than codes
    cb(data)
    assert bool(cb.inited)
    assert torch.unique(cb.embed, dim=0).shape[0] == 32  # noise makes duplicates distinct
    assert cb.embed.abs().sum() > 0


def test_dead_codes_come_back_into_use():
    cb = _book(FixedEuclideanCodebook, size=32)
    cb.inited.fill_(0.0)
    cb.restart_threshold, cb.restart_count = 0.3, 0.5
    g = torch.Generator().manual_seed(1)
    used = set()
    for _ in range(60):
        x = torch.randn(256, 4, generator=g) * 3
        _, ind = cb(x)
        used |= set(ind.tolist())
    with torch.no_grad():
        cb.eval()
        _, ind = cb(torch.randn(4096, 4, generator=g) * 3)
    assert len(set(ind.tolist())) >= 24  # >= 75% of the codebook in use


def test_fix_quantizer_keeps_state_dict_keys():
    from telugu_s2s.codec.checkpoint import CodecArch, build_model

    arch = CodecArch(sample_rate=16000, n_filters=4, ratios=(8, 8, 4), dimension=16, bins=64,
                     target_bandwidths=(1.5,), pad_mode="constant", lstm=0)
    model = build_model(arch)
    keys = set(model.state_dict())
    books = fix_quantizer(model)
    assert all(isinstance(b, FixedEuclideanCodebook) for b in books)
    assert set(model.state_dict()) == keys
    build_model(arch).load_state_dict(model.state_dict())


def test_kmeans_uses_every_centroid_on_enough_data():
    from telugu_s2s.training.quantizer import kmeans

    g = torch.Generator().manual_seed(0)
    data = torch.randn(2000, 8, generator=g)
    cent, counts = kmeans(data, 64, iters=5)
    assert cent.shape == (64, 8)
    assert int(counts.sum()) == 2000
    assert (counts > 0).all()


def test_kmeans_init_rvq_fills_every_codebook_on_the_residuals():
    from telugu_s2s.codec.checkpoint import CodecArch, build_model
    from telugu_s2s.training.quantizer import kmeans_init_rvq

    arch = CodecArch(sample_rate=16000, n_filters=4, ratios=(8, 8, 4), dimension=16, bins=64,
                     target_bandwidths=(1.5,), pad_mode="constant", lstm=0)
    model = build_model(arch)
    fix_quantizer(model)
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(4096, 16, generator=g) * 2.0
    usage = kmeans_init_rvq(model, latents, iters=5)
    assert len(usage) == len(model.quantizer.vq.layers) and min(usage) == 1.0
    model.quantizer.eval()
    codes = model.quantizer.vq.encode(latents.t()[None])  # [K, 1, N]
    for q in range(codes.shape[0]):
        assert codes[q].unique().numel() >= 0.9 * arch.bins
