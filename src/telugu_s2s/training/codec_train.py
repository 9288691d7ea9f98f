"""`train codec`: a small Telugu EnCodec (SEANet + residual VQ from the `encodec` package).

Losses: multi-resolution log-mel (L1 + L2) + VQ commitment; with `adversarial`, also the
critics of `discriminators.py` (multi-period and multi-scale STFT, least squares, feature
matching) and a multi-resolution linear-magnitude STFT loss, which together make the decoder
produce harmonics and pitch instead of a noise-excited envelope. EMA codebooks with the
fixed dead-code restarts of `quantizer.py`. The quantizer is bypassed for the first
`bypass_steps` (the decoder sees the continuous latent; the codebooks still learn from it),
which keeps the latent from collapsing onto one or two codes early.

`init_from` starts from a trained codec; `freeze_codes` then trains the decoder alone, so
every input keeps its codes: the encoded S2S corpus and the S2S model stay valid.
Checkpoints every `ckpt_every` steps into the run dir; a rerun resumes from there.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from telugu_s2s.codec.checkpoint import DEMO_ARCH, CodecArch, build_model, save
from telugu_s2s.codec.harmonic import Controls, HarmonicDecoder
from telugu_s2s.training import pitch, synth
from telugu_s2s.training.audio_feats import multires_mel_loss
from telugu_s2s.training.discriminators import (
    CodecCritics,
    critic_loss,
    feature_matching,
    generator_loss,
    multires_stft_loss,
)
from telugu_s2s.training.quantizer import fix_quantizer, kmeans_init_rvq
from telugu_s2s.training.run_state import RunState, config_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CodecTrainConfig:
    data_dir: Path = Path(".data")
    run_dir: Path = Path("runs/codec")
    out_dir: Path = Path("models/codec")
    arch: CodecArch = DEMO_ARCH
    steps: int = 2000
    batch_size: int = 8
    crop_s: float = 1.0
    lr: float = 1.5e-3
    commitment_weight: float = 1.0  # only after the bypass
    bypass_steps: int = 400  # the autoencoder learns first; k-means then fits meaningful latents
    kmeans_frames: int = 20000  # encoder latent frames (recent bypass batches) for the k-means init
    kmeans_iters: int = 15
    ema_decay: float = 0.9  # codebook EMA decay (lower = codes follow a drifting latent faster)
    reinit_below: float = 0.5  # at each log point, k-means re-init when a codebook used fewer codes
    reinit_until: float = 0.8  # ... but only in the first 80% of the steps (the decoder adapts after)
    restart_threshold: float = 0.05  # dead after ~140 idle steps (restart count 0.2, decay 0.99)
    ckpt_every: int = 50
    log_every: int = 25
    seed: int = 0
    device: str = "cpu"
    threads: int = 0  # 0 = torch default
    name: str = "telugu-codec-demo"
    progress: bool = True
    # the voice-keeping losses (see the module docstring)
    adversarial: bool = False
    init_from: Path | None = None  # a codec checkpoint dir of the same arch
    freeze_codes: bool = False  # train the decoder alone (needs init_from)
    mel_weight: float = 1.0
    stft_weight: float = 0.0
    adv_weight: float = 1.0
    fm_weight: float = 2.0
    critic_lr: float = 2e-4
    max_files: int = 0  # train on this many of the split's files, drawn with the seed (0 = all)
    # the harmonic decoder (arch.decoder == "harmonic"): its F0 and voicing heads learn from a
    # pitch tracker's reading of the input (with the encoder training too, that makes it keep
    # pitch in the codes)
    f0_weight: float = 1.0
    voicing_weight: float = 0.3


CLIPS_FILE = "codec_clips.npz"  # a packed training set (`pack_clips`) in the data dir wins over the split


def split_files(data_dir: Path, split: str) -> list[str]:
    """Unique audio files of a split (relative paths, sorted). Training clips carry no reply:
    the training split adds every reference reply."""
    rows = synth.read_jsonl(Path(data_dir) / "splits" / f"{split}.jsonl")
    wanted = {r["user_audio"] for r in rows} | {r["reply_audio"] for r in rows if r["reply_audio"]}
    if split == "train":
        wanted |= {r["audio"] for r in synth.read_jsonl(Path(data_dir) / "references.jsonl")}
    return sorted(wanted)


def read_clips(data_dir: Path, rels: list[str], sample_rate: int) -> dict[str, np.ndarray]:
    """These files, resampled to `sample_rate` (dict relpath -> float32)."""
    import soxr

    out = {}
    for rel in rels:
        x = synth.read_audio(Path(data_dir) / rel)
        if sample_rate != synth.SAMPLE_RATE:
            x = soxr.resample(x, synth.SAMPLE_RATE, sample_rate, quality="HQ").astype(np.float32)
        out[rel] = x
    return out


def load_corpus_audio(
    data_dir: Path, split: str, sample_rate: int, max_files: int = 0, seed: int = 0
) -> dict[str, np.ndarray]:
    """A split's audio files (`split_files`), resampled; `max_files` > 0 keeps that many,
    drawn with `seed`."""
    rels = split_files(data_dir, split)
    if max_files and len(rels) > max_files:
        rels = sorted(random.Random(seed).sample(rels, max_files))
    return read_clips(data_dir, rels, sample_rate)


def pack_clips(data_dir: Path, out: Path, sample_rate: int, max_files: int, seed: int = 0) -> dict:
    """Write the codec's training audio (every reference reply, then training clips drawn with
    `seed`, `max_files` files in all) as one compressed file of 16-bit samples, to train on a
    machine that holds no corpus: put it in a data dir as `CLIPS_FILE`."""
    refs = sorted({r["audio"] for r in synth.read_jsonl(Path(data_dir) / "references.jsonl")})
    users = sorted(set(split_files(data_dir, "train")) - set(refs))
    keep = refs + sorted(random.Random(seed).sample(users, max(0, min(len(users), max_files - len(refs)))))
    clips = read_clips(data_dir, keep, sample_rate)
    arrays = {
        f"c{i:05d}": np.clip(np.round(clips[k] * 32767), -32768, 32767).astype(np.int16) for i, k in enumerate(keep)
    }
    np.savez_compressed(out, sample_rate=np.array(sample_rate), **arrays)
    seconds = sum(len(a) for a in arrays.values()) / sample_rate
    return {
        "files": len(keep),
        "references": len(refs),
        "seconds": round(seconds, 1),
        "bytes": Path(out).stat().st_size,
    }


def load_clips(cfg: CodecTrainConfig) -> list[np.ndarray]:
    """The training audio: the data dir's packed `CLIPS_FILE` if there is one, else the split."""
    packed = Path(cfg.data_dir) / CLIPS_FILE
    if packed.exists():
        with np.load(packed) as z:
            if int(z["sample_rate"]) != cfg.arch.sample_rate:
                raise ValueError(f"{packed}: {int(z['sample_rate'])} Hz, the codec runs at {cfg.arch.sample_rate}")
            return [z[k].astype(np.float32) / 32767 for k in sorted(z.files) if k != "sample_rate"]
    return list(load_corpus_audio(cfg.data_dir, "train", cfg.arch.sample_rate, cfg.max_files, cfg.seed).values())


def _batch(clips: list[np.ndarray], n: int, length: int, rng: random.Random) -> torch.Tensor:
    out = np.zeros((n, 1, length), dtype=np.float32)
    for i in range(n):
        x = clips[rng.randrange(len(clips))]
        if len(x) > length:
            s = rng.randrange(len(x) - length)
            out[i, 0] = x[s : s + length]
        else:
            out[i, 0, : len(x)] = x
        out[i, 0] *= 10 ** (rng.uniform(-6, 0) / 20)  # level augmentation
    return torch.from_numpy(out)


def codec_forward(model, x: torch.Tensor, bypass: bool, frozen: bool = False):
    """Encoder -> RVQ -> decoder; returns (y_hat, codes, commit penalty, latent, controls).
    `frozen`: the encoder and quantizer run without gradients (and without codebook updates).
    `controls` are the harmonic decoder's per-frame F0 and voicing (None for SEANet)."""
    with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
        emb = model.encoder(x)
        q = model.quantizer(emb, model.frame_rate, model.bandwidth)
    latent = emb if bypass else q.quantized
    controls = None
    if isinstance(model.decoder, HarmonicDecoder):
        controls = model.decoder.controls(latent)
        y_hat = model.decoder.synthesize(controls)[:, None, :]
    else:
        y_hat = model.decoder(latent)
    return y_hat[..., : x.shape[-1]], q.codes, q.penalty, emb, controls


def pitch_losses(controls: Controls, x: torch.Tensor, sample_rate: int, hop: int) -> dict[str, torch.Tensor]:
    """L1 on log F0 over the frames a pitch tracker finds voiced, and the voicing decision's
    cross-entropy, against `pitch.frame_f0` of the input audio x [B, 1, N]."""
    target = torch.from_numpy(
        np.stack([pitch.frame_f0(row, sample_rate, hop, controls.log_f0.shape[1]) for row in x[:, 0].cpu().numpy()])
    ).to(x.device)
    voiced = (target > 0).float()
    f0 = (controls.log_f0 - torch.log(target.clamp(min=1.0))).abs()
    return {
        "f0": (f0 * voiced).sum() / voiced.sum().clamp(min=1.0),
        "voicing": F.binary_cross_entropy_with_logits(controls.voiced_logit, voiced),
    }


def _init_weights(model, init_from: Path, arch: CodecArch) -> None:
    """Weights of the checkpoint in `init_from` (of the same arch; with another decoder, its
    encoder and quantizer only)."""
    from telugu_s2s.codec.checkpoint import load

    loaded = load(Path(init_from))
    if dataclasses.replace(loaded.arch, decoder=arch.decoder) != arch:
        raise ValueError(f"{init_from}: arch {loaded.arch} differs from the run's {arch}")
    state = loaded.model.state_dict()
    if loaded.arch.decoder != arch.decoder:
        state = {k: v for k, v in state.items() if not k.startswith("decoder.")}
    model.load_state_dict(state, strict=loaded.arch.decoder == arch.decoder)
    log.info("codec: starting from %s", loaded.weights_id)


def _lr_lambda(steps: int):
    return lambda s: min(1.0, (s + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))


def train_codec(cfg: CodecTrainConfig) -> dict:
    from tqdm import tqdm

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.bypass_steps > 0 and cfg.kmeans_frames < cfg.arch.bins:
        raise ValueError(f"kmeans_frames {cfg.kmeans_frames} must be >= the codebook size {cfg.arch.bins}")
    if cfg.freeze_codes and (cfg.init_from is None or cfg.bypass_steps > 0):
        raise ValueError("freeze_codes trains the decoder of a trained codec: it needs init_from and bypass_steps 0")
    torch.set_flush_denormal(True)  # tiny activations early in training: denormals stall CPU math
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    arch = cfg.arch
    model = build_model(arch)
    if cfg.init_from is not None:
        _init_weights(model, cfg.init_from, arch)
    model.set_target_bandwidth(arch.target_bandwidths[-1])
    books = fix_quantizer(model, cfg.restart_threshold, 1.0, reset_init=cfg.init_from is None)
    for b in books:
        b.decay = cfg.ema_decay
    model.to(cfg.device).train()
    if cfg.freeze_codes:
        for part in (model.encoder, model.quantizer):
            part.eval().requires_grad_(False)
    trained = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trained, lr=cfg.lr, betas=(0.8, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg.steps))
    extras: dict[str, Any] = {}
    critics = None
    if cfg.adversarial:
        critics = CodecCritics().to(cfg.device).train()
        critic_opt = torch.optim.Adam(critics.parameters(), lr=cfg.critic_lr, betas=(0.8, 0.99))
        critic_sched = torch.optim.lr_scheduler.LambdaLR(critic_opt, _lr_lambda(cfg.steps))
        extras = {"critics": critics, "critic_opt": critic_opt, "critic_sched": critic_sched}
    run_dir = Path(cfg.run_dir)
    state = RunState(run_dir, model, opt, sched, rng, extras)
    step, history = state.resume(cfg.device, "codec")

    clips = load_clips(cfg)
    log.info("codec: %d training clips, %.0f s of audio", len(clips), sum(len(c) for c in clips) / arch.sample_rate)
    length = int(cfg.crop_s * arch.sample_rate)
    t0 = time.perf_counter()
    start_step = step
    bar = tqdm(total=cfg.steps, initial=step, desc="codec", unit="step", disable=not cfg.progress)
    agg: dict[str, float] = {}
    latent_buf: list[torch.Tensor] = []
    seen_codes: list[set] = []
    while step < cfg.steps:
        x = _batch(clips, cfg.batch_size, length, rng).to(cfg.device)
        bypass = step < cfg.bypass_steps
        if step == cfg.bypass_steps and cfg.bypass_steps > 0:
            # top up with fresh crops when the recent bypass batches hold too few frames
            # (short bypass, or resumed right at its end)
            with torch.no_grad():
                while sum(b.shape[0] for b in latent_buf) < cfg.kmeans_frames:
                    e = model.encoder(_batch(clips, cfg.batch_size, length, rng).to(cfg.device))
                    latent_buf.append(e.transpose(1, 2).reshape(-1, e.shape[1]).cpu())
            buf = torch.cat(latent_buf)[-cfg.kmeans_frames :]
            usage0 = kmeans_init_rvq(model, buf.to(cfg.device), iters=cfg.kmeans_iters, seed=cfg.seed)
            log.info(
                "codec: bypass over at step %d; k-means init of %d codebooks on %d latent frames "
                "(share of codes with vectors: %s)",
                step,
                len(usage0),
                buf.shape[0],
                usage0,
            )
            latent_buf = []
        if step > cfg.bypass_steps and cfg.reinit_below <= 0:
            latent_buf = []
        y_hat, codes, penalty, emb, controls = codec_forward(model, x, bypass, cfg.freeze_codes)
        if not cfg.freeze_codes and (bypass or cfg.reinit_below > 0):
            latent_buf.append(emb.detach().transpose(1, 2).reshape(-1, emb.shape[1]).cpu())
            while len(latent_buf) > 1 and sum(b.shape[0] for b in latent_buf[1:]) >= cfg.kmeans_frames:
                latent_buf.pop(0)
        rec = multires_mel_loss(y_hat.squeeze(1), x.squeeze(1), arch.sample_rate)
        # no commitment pressure while the decoder sees the continuous latent
        loss = cfg.mel_weight * rec + (0.0 if bypass or cfg.freeze_codes else cfg.commitment_weight) * penalty
        terms = {}
        if controls is not None:
            terms.update(pitch_losses(controls, x, arch.sample_rate, arch.hop_length))
            loss = loss + cfg.f0_weight * terms["f0"] + cfg.voicing_weight * terms["voicing"]
        if cfg.stft_weight:
            terms["stft"] = multires_stft_loss(y_hat.squeeze(1), x.squeeze(1))
            loss = loss + cfg.stft_weight * terms["stft"]
        if critics is not None:
            # the critics' step first, on decoded audio detached from the codec
            real_logits, real_feats = critics(x)
            fake_logits, _ = critics(y_hat.detach())
            terms["critic"] = critic_loss(real_logits, fake_logits)
            critic_opt.zero_grad(set_to_none=True)
            terms["critic"].backward()
            torch.nn.utils.clip_grad_norm_(critics.parameters(), 5.0)
            critic_opt.step()
            critic_sched.step()
            # then the codec's adversarial and feature-matching terms
            critics.requires_grad_(False)  # the codec's gradient flows through them, theirs is not needed
            fake_logits, fake_feats = critics(y_hat)  # real_feats: detached in feature_matching
            critics.requires_grad_(True)
            terms["adv"] = generator_loss(fake_logits)
            terms["fm"] = feature_matching(real_feats, fake_feats)
            loss = loss + cfg.adv_weight * terms["adv"] + cfg.fm_weight * terms["fm"]
        if not seen_codes:
            seen_codes = [set() for _ in range(codes.shape[0])]
        for i in range(codes.shape[0]):
            seen_codes[i].update(codes[i].unique().tolist())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 5.0)
        opt.step()
        sched.step()
        step += 1
        for k, v in (
            ("loss", loss.item()),
            ("rec", rec.item()),
            ("commit", penalty.item()),
            ("latent_std", emb.detach().std().item()),
            ("used0", float(codes[0].unique().numel())),
            ("used_last", float(codes[-1].unique().numel())),
            ("restarts", float(sum(getattr(b, "last_restarts", 0) for b in books))),
            *((k, v.item()) for k, v in terms.items()),
        ):
            agg[k] = agg.get(k, 0.0) + v
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            n = cfg.log_every if step % cfg.log_every == 0 else (step % cfg.log_every)
            rec_row: dict[str, Any] = {
                "step": step,
                **{k: round(v / n, 4) for k, v in agg.items()},
                "usage_window": [round(len(u) / arch.bins, 3) for u in seen_codes],
                "steps_per_s": round((step - start_step) / (time.perf_counter() - t0), 3),
            }
            history.append(rec_row)
            bar.set_postfix(rec=rec_row["rec"], used=rec_row["used0"], std=rec_row["latent_std"])
            if rec_row["used0"] <= 2 and not bypass:
                log.warning("codec: codebook collapse? only %.0f codes used per batch", rec_row["used0"])
            log.info("codec: %s", rec_row)
            low = min(rec_row["usage_window"]) if seen_codes else 1.0
            if (
                not bypass
                and not cfg.freeze_codes
                and low < cfg.reinit_below
                and step < cfg.reinit_until * cfg.steps
                and sum(b.shape[0] for b in latent_buf) >= cfg.kmeans_frames
            ):
                buf = torch.cat(latent_buf)[-cfg.kmeans_frames :]
                usage0 = kmeans_init_rvq(model, buf.to(cfg.device), iters=cfg.kmeans_iters, seed=cfg.seed + step)
                log.info(
                    "codec: codebook usage %.3f < %.2f at step %d: k-means re-init on the last %d latent frames",
                    low,
                    cfg.reinit_below,
                    step,
                    buf.shape[0],
                )
                rec_row["reinit"] = True
            agg, seen_codes = {}, []
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            state.save(step, history)
    bar.close()
    elapsed = time.perf_counter() - t0
    model.eval().cpu()
    info = synth.load_info(cfg.data_dir)
    meta = {
        "name": cfg.name,
        "data_version": info["data_version"],
        "steps": cfg.steps,
        "train_config": config_record(cfg, leave_out=("arch",)),
        "final": history[-1] if history else {},
    }
    save(model, arch, Path(cfg.out_dir), meta)
    return state.finish("codec", step, start_step, elapsed, history)
