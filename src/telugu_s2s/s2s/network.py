"""The S2S network: a decoder-only transformer over codec tokens, and its KV cache."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from telugu_s2s.s2s.config import S2SConfig


class KVCache:
    """Per-layer key/value buffers [slots, heads, max_seq_len, head_dim].

    Active streams occupy slots 0..n-1 (kept contiguous by `move`), so a decode step over n
    streams reads views, never copies. `steer` [slots, d_model] holds each stream's listener
    vector for its reply steps (zero when the model has none).
    """

    def __init__(self, cfg: S2SConfig, slots: int, device: torch.device | str = "cpu", dtype=torch.float32):
        self.cfg = cfg
        self.device = torch.device(device)
        self.dtype = dtype
        self.head_dim = cfg.d_model // cfg.n_heads
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        self.steer = torch.zeros(0, cfg.d_model, device=self.device, dtype=dtype)
        self.slots = 0
        self.grow(max(1, slots))

    def _alloc(self, slots: int) -> torch.Tensor:
        shape = (slots, self.cfg.n_heads, self.cfg.max_seq_len, self.head_dim)
        return torch.zeros(shape, device=self.device, dtype=self.dtype)

    def grow(self, slots: int) -> None:
        if slots <= self.slots:
            return
        new_k, new_v = [], []
        for i in range(self.cfg.n_layers):
            k, v = self._alloc(slots), self._alloc(slots)
            if self.slots:
                k[: self.slots].copy_(self.k[i])
                v[: self.slots].copy_(self.v[i])
            new_k.append(k)
            new_v.append(v)
        steer = torch.zeros(slots, self.cfg.d_model, device=self.device, dtype=self.dtype)
        steer[: self.slots].copy_(self.steer)
        self.k, self.v, self.steer, self.slots = new_k, new_v, steer, slots

    def move(self, src: int, dst: int, length: int) -> None:
        """Copy slot `src`'s first `length` positions into slot `dst`."""
        for k, v in zip(self.k, self.v):
            k[dst, :, :length].copy_(k[src, :, :length])
            v[dst, :, :length].copy_(v[src, :, :length])
        self.steer[dst].copy_(self.steer[src])


class _Attention(nn.Module):
    def __init__(self, cfg: S2SConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.head_dim = cfg.d_model // cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, length, _ = x.shape
        qkv = self.qkv(x).view(b, length, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]  # each [B, H, L, Dh]

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        b, _, length, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(b, length, -1))

    def full(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Causal attention, or `mask` (bool [B, 1, L, L], True = may attend) when given."""
        q, k, v = self._split(x)
        # No dropout on the attention weights: with dropout_p > 0 the CPU picks the unfused
        # kernel, ~10x slower here. `dropout` acts on the embeddings and residual branches.
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self._merge(y), k, v

    def step(
        self,
        x: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        rows: torch.Tensor,
        pos: torch.Tensor,
        span: int,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        q, k, v = self._split(x)  # [B, H, 1, Dh]
        k_cache[rows, :, pos] = k[:, :, 0]
        v_cache[rows, :, pos] = v[:, :, 0]
        n = x.shape[0]
        keys = k_cache[:n, :, :span]
        values = v_cache[:n, :, :span]
        y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return self._merge(y)


class _Block(nn.Module):
    def __init__(self, cfg: S2SConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = _Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.ffn_mult * cfg.d_model),
            nn.GELU(),
            nn.Linear(cfg.ffn_mult * cfg.d_model, cfg.d_model),
        )
        self.drop = nn.Dropout(cfg.dropout)


class _Listener(nn.Module):
    """Hears one user turn alone, both ways (S2SConfig.listener_*): the codec latent of each
    frame, normalized over the turn, two strided convolutions (4x fewer positions), a
    bidirectional transformer and attention pooling -> one vector per turn."""

    def __init__(self, cfg: S2SConfig) -> None:
        super().__init__()
        d = cfg.listener_dim
        self.inp = nn.Linear(cfg.listener_latent_dim, d)
        self.conv1 = nn.Conv1d(d, d, 5, stride=2, padding=2)
        self.conv2 = nn.Conv1d(d, d, 5, stride=2, padding=2)
        self.pos = nn.Embedding(cfg.max_seq_len // 4 + 1, d)
        layer = nn.TransformerEncoderLayer(
            d, cfg.n_heads, 4 * d, dropout=0.1, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.listener_layers, enable_nested_tensor=False)
        self.ln = nn.LayerNorm(d)
        self.pool = nn.Linear(d, 1)
        self.out = nn.Linear(d, cfg.d_model)
        self.steer = nn.Linear(d, cfg.d_model) if cfg.listener_every_step else None
        self.head = nn.Linear(d, cfg.listener_classes) if cfg.listener_classes else None
        # Two CTC outputs per position (4x fewer positions than frames: 31 per second at 62.5
        # frames/s, room for a syllable's characters).
        self.ctc = nn.Linear(d, 2 * cfg.listener_ctc_symbols) if cfg.listener_ctc_symbols else None

    @staticmethod
    def _conv(conv: nn.Conv1d, x: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x [B, T, d] with frames >= lens zeroed; out zeroed past the new lengths, so a turn
        # gives the same result alone or padded in a batch.
        y = F.gelu(conv(x.transpose(1, 2))).transpose(1, 2)
        lens = (lens + 1) // 2
        keep = torch.arange(y.shape[1], device=y.device)[None, :] < lens[:, None]
        return y * keep[..., None], lens

    def forward(self, latent: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """latent [B, T, c] (frames >= lens ignored), lens [B] >= 1 -> (vector [B, d_model]
        to add where the reply starts, pooled features [B, listener_dim] for the head)."""
        h, pad, _ = self.positions(latent, lens)
        weights = self.pool(h).squeeze(-1).masked_fill(pad, float("-inf")).softmax(-1)
        pooled = (weights[..., None] * h).sum(1)
        return self.out(pooled), pooled

    def positions(self, latent: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The encoder's output before pooling: (h [B, T', d], padding mask [B, T'], lengths [B])."""
        valid = (torch.arange(latent.shape[1], device=latent.device)[None, :] < lens[:, None])[..., None]
        n = lens.clamp_min(1)[:, None, None].to(latent.dtype)
        mean = (latent * valid).sum(1, keepdim=True) / n
        std = ((((latent - mean) * valid) ** 2).sum(1, keepdim=True) / n).sqrt() + 1e-3
        x = self.inp((latent - mean) / std) * valid
        x, lens = self._conv(self.conv1, x, lens)
        x, lens = self._conv(self.conv2, x, lens)
        length = x.shape[1]
        if length > self.pos.num_embeddings:
            raise ValueError(f"user turn too long for the listener ({length} > {self.pos.num_embeddings} positions)")
        x = x + self.pos(torch.arange(length, device=x.device))[None]
        pad = torch.arange(length, device=x.device)[None, :] >= lens[:, None]
        return self.ln(self.encoder(x, src_key_padding_mask=pad)), pad, lens


class _Pass(NamedTuple):
    """One full forward: final hidden states [B, L, d], per-layer (k, v) when kept, the
    listener's pooled features [B, listener_dim] and its reply-step vector [B, d_model]
    (None without a listener / without `listener_every_step`)."""

    x: torch.Tensor
    kvs: list[tuple[torch.Tensor, torch.Tensor]]
    heard: torch.Tensor | None
    steer: torch.Tensor | None


class S2STransformer(nn.Module):
    """Decoder-only transformer; one position per frame step, one head per codebook."""

    def __init__(self, cfg: S2SConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.ModuleList(nn.Embedding(cfg.in_vocab, cfg.d_model) for _ in range(cfg.n_codebooks))
        self.pos_emb = nn.Embedding(cfg.max_seq_len, cfg.d_model)
        self.voice_emb = nn.Embedding(cfg.n_voices, cfg.d_model)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.heads = nn.Linear(cfg.d_model, cfg.n_codebooks * cfg.out_vocab)
        self.aux_head = nn.Linear(cfg.d_model, cfg.aux_classes) if cfg.aux_classes else None
        self.drop = nn.Dropout(cfg.dropout)
        if cfg.latent_dim:
            # [K, in_vocab, latent_dim]; special tokens' rows stay zero. Saved with the weights.
            self.register_buffer("code_vectors", torch.zeros(cfg.n_codebooks, cfg.in_vocab, cfg.latent_dim))
        if cfg.acoustic_dim:
            self.acoustic_norm = nn.LayerNorm(cfg.acoustic_dim)
            self.acoustic_proj = nn.Linear(cfg.acoustic_dim, cfg.d_model)
        self.listener = _Listener(cfg) if cfg.listener_layers else None
        self.apply(self._init)
        if self.listener is not None:
            # Starts silent: a model it is added to answers as before until it learns to listen.
            nn.init.zeros_(self.listener.out.weight)
            if self.listener.steer is not None:
                nn.init.zeros_(self.listener.steer.weight)

    @torch.no_grad()
    def set_code_vectors(self, vectors: np.ndarray | torch.Tensor) -> None:
        """The codec's codebooks [>= n_codebooks, codebook_size, acoustic_dim] (training sets
        them once; a checkpoint carries them)."""
        if not self.cfg.latent_dim:
            raise ValueError("this model reads no codec latent (acoustic_dim = 0 and no listener)")
        v = torch.as_tensor(np.asarray(vectors), dtype=self.code_vectors.dtype)
        want = (self.cfg.codebook_size, self.cfg.latent_dim)
        if v.dim() != 3 or v.shape[0] < self.cfg.n_codebooks or tuple(v.shape[1:]) != want:
            raise ValueError(
                f"code vectors must be [>= {self.cfg.n_codebooks}, {want[0]}, {want[1]}], got {tuple(v.shape)}"
            )
        self.code_vectors.zero_()
        self.code_vectors[:, : self.cfg.codebook_size] = v[: self.cfg.n_codebooks].to(self.code_vectors.device)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _embed(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        # tokens [B, K, L], positions [B, L] or [L]
        x = self.tok_emb[0](tokens[:, 0])
        for q in range(1, self.cfg.n_codebooks):
            x = x + self.tok_emb[q](tokens[:, q])
        if self.cfg.acoustic_dim:
            x = x + self.acoustic_proj(self.acoustic_norm(self._latent(tokens)))
        return x + self.pos_emb(positions)

    def _latent(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, K, L] -> the codec's dequantized latent [B, L, latent_dim] (special tokens: 0)."""
        latent = F.embedding(tokens[:, 0], self.code_vectors[0])
        for q in range(1, self.cfg.n_codebooks):
            latent = latent + F.embedding(tokens[:, q], self.code_vectors[q])
        return latent

    def listen(self, tokens: torch.Tensor, user_start: torch.Tensor, user_end: torch.Tensor):
        """The listener over each row's user turn, tokens[:, :, user_start:user_end] ->
        (vector [B, d_model], pooled [B, listener_dim])."""
        if self.listener is None:
            raise ValueError("this model has no listener (listener_layers = 0)")
        lens = (user_end - user_start).clamp_min(1)
        span = torch.arange(int(lens.max()), device=tokens.device)
        idx = (user_start[:, None] + span[None, :]).clamp_max(tokens.shape[2] - 1)  # [B, T]
        user = tokens.gather(2, idx[:, None, :].expand(-1, tokens.shape[1], -1))
        return self.listener(self._latent(user), lens)

    def heard_ctc(self, tokens: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training only: user turns alone (tokens [B, K, T] from position 0, lengths [B]) ->
        the CTC head's log-probabilities [2T', B, symbols] and their lengths [B] (F.ctc_loss)."""
        if self.listener is None or self.listener.ctc is None:
            raise ValueError("this model's listener has no CTC head (listener_ctc_symbols = 0)")
        h, _, out_lens = self.listener.positions(self._latent(tokens), lens.clamp_min(1))
        b, t, _ = h.shape
        logits = self.listener.ctc(h).view(b, 2 * t, self.cfg.listener_ctc_symbols)
        return logits.log_softmax(-1).transpose(0, 1), 2 * out_lens

    def heard_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """Training only: the listener's head on its pooled features -> intent logits."""
        if self.listener is None or self.listener.head is None:
            raise ValueError("this model's listener has no head (listener_classes = 0)")
        return self.listener.head(pooled)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        # x [B, L, d] -> [B, K, L, V+1]
        b, length, _ = x.shape
        y = self.heads(self.ln_f(x)).view(b, length, self.cfg.n_codebooks, self.cfg.out_vocab)
        return y.permute(0, 2, 1, 3)

    def _check(self, tokens: torch.Tensor) -> None:
        if tokens.dim() != 3 or tokens.shape[1] != self.cfg.n_codebooks:
            raise ValueError(f"tokens must be [B, {self.cfg.n_codebooks}, L], got {tuple(tokens.shape)}")
        if tokens.shape[2] > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {tokens.shape[2]} positions exceeds max_seq_len {self.cfg.max_seq_len}")

    def _full(
        self, tokens: torch.Tensor, voice: torch.Tensor, keep_kv: bool, prefix_len: torch.Tensor | None = None
    ) -> _Pass:
        """prefix_len [B]: each row's prefix length (where its reply starts); needed by
        `voice_at_reply` and `bidirectional_prefix`, ignored otherwise."""
        self._check(tokens)
        b, _, length = tokens.shape
        needs_prefix = self.cfg.voice_at_reply or self.cfg.bidirectional_prefix or self.listener is not None
        if needs_prefix and prefix_len is None:
            raise ValueError("this model needs each row's prefix length (prefix_len)")
        pos = torch.arange(length, device=tokens.device)
        x = self._embed(tokens, pos)
        x[:, 0] = x[:, 0] + self.voice_emb(voice)
        if self.cfg.voice_at_reply:
            rows = torch.arange(b, device=tokens.device)
            x[rows, prefix_len - 1] = x[rows, prefix_len - 1] + self.voice_emb(voice)
        heard = steer = None
        if self.listener is not None:
            # The user turn sits between the prefix's first SEP (context tokens are never SEP)
            # and its last position, the SEP where the reply starts.
            first_sep = (tokens[:, 0] == self.cfg.sep).long().argmax(1)
            vec, heard = self.listen(tokens, first_sep + 1, prefix_len - 1)
            rows = torch.arange(b, device=tokens.device)
            x[rows, prefix_len - 1] = x[rows, prefix_len - 1] + vec
            if self.listener.steer is not None:
                # ... and at every reply step: the SEP that predicts step 0 and each one after.
                steer = self.listener.steer(heard)
                replying = (pos[None, :] >= (prefix_len - 1)[:, None]).to(x.dtype)  # [B, L]
                x = x + replying[..., None] * steer[:, None, :]
        mask = None
        if self.cfg.bidirectional_prefix:
            inside = pos[None, :] < prefix_len[:, None]  # [B, L]
            mask = (pos[:, None] >= pos[None, :])[None] | (inside[:, :, None] & inside[:, None, :])
            mask = mask[:, None]  # [B, 1, L, L]
        x = self.drop(x)
        kvs = []
        for blk in self.blocks:
            a, k, v = blk.attn.full(blk.ln1(x), mask)
            x = x + blk.drop(a)
            x = x + blk.drop(blk.mlp(blk.ln2(x)))
            if keep_kv:
                kvs.append((k, v))
        return _Pass(x, kvs, heard, steer)

    def forward(
        self, tokens: torch.Tensor, voice: torch.Tensor, prefix_len: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher forcing: tokens [B, K, L] (position 0 = VOICE), voice [B] -> logits [B, K, L, V+1]."""
        return self._logits(self._full(tokens, voice, keep_kv=False, prefix_len=prefix_len).x)

    def forward_with_hidden(
        self, tokens: torch.Tensor, voice: torch.Tensor, prefix_len: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """As `forward`, plus the final hidden states [B, L, d] and the listener's pooled
        features [B, listener_dim] (None without a listener), for training-only heads."""
        out = self._full(tokens, voice, keep_kv=False, prefix_len=prefix_len)
        return self._logits(out.x), out.x, out.heard

    @torch.no_grad()
    def prefill(self, tokens: torch.Tensor, voice: int, cache: KVCache, slot: int) -> torch.Tensor:
        """Run a prefix [K, P] for one stream into cache `slot`; return the last logits [K, V+1]."""
        length = tokens.shape[1]
        out = self._full(
            tokens.unsqueeze(0),
            torch.tensor([voice], device=tokens.device),
            keep_kv=True,
            prefix_len=torch.tensor([length], device=tokens.device),
        )
        for i, (k, v) in enumerate(out.kvs):
            cache.k[i][slot, :, :length].copy_(k[0])
            cache.v[i][slot, :, :length].copy_(v[0])
        if out.steer is None:
            cache.steer[slot].zero_()
        else:
            cache.steer[slot].copy_(out.steer[0])
        return self._logits(out.x[:, -1:])[0, :, 0]

    @torch.no_grad()
    def decode_step(self, tokens: torch.Tensor, positions: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """One step for the streams in cache slots 0..B-1.

        tokens [B, K] (input at `positions`), positions [B] -> logits [B, K, V+1].
        """
        n = tokens.shape[0]
        if n > cache.slots:
            raise ValueError(f"{n} streams but the cache has {cache.slots} slots")
        if int(positions.max()) >= self.cfg.max_seq_len:
            raise ValueError("a stream reached max_seq_len")
        x = self._embed(tokens.unsqueeze(-1), positions.unsqueeze(-1))  # [B, 1, d]
        if self.cfg.listener_every_step:
            x = x + cache.steer[:n, None, :]
        span = int(positions.max()) + 1
        rows = torch.arange(n, device=tokens.device)
        mask = (torch.arange(span, device=tokens.device)[None, :] <= positions[:, None]).view(n, 1, 1, span)
        for i, blk in enumerate(self.blocks):
            x = x + blk.attn.step(blk.ln1(x), cache.k[i], cache.v[i], rows, positions, span, mask)
            x = x + blk.mlp(blk.ln2(x))
        return self._logits(x)[:, :, 0]
