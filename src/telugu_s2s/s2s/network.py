"""The S2S network: a decoder-only transformer over codec tokens, and its KV cache."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from telugu_s2s.s2s.config import S2SConfig


class KVCache:
    """Per-layer key/value buffers [slots, heads, max_seq_len, head_dim].

    Active streams occupy slots 0..n-1 (kept contiguous by `move`), so a decode step over n
    streams reads views, never copies.
    """

    def __init__(self, cfg: S2SConfig, slots: int, device: torch.device | str = "cpu", dtype=torch.float32):
        self.cfg = cfg
        self.device = torch.device(device)
        self.dtype = dtype
        self.head_dim = cfg.d_model // cfg.n_heads
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
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
        self.k, self.v, self.slots = new_k, new_v, slots

    def move(self, src: int, dst: int, length: int) -> None:
        """Copy slot `src`'s first `length` positions into slot `dst`."""
        for k, v in zip(self.k, self.v):
            k[dst, :, :length].copy_(k[src, :, :length])
            v[dst, :, :length].copy_(v[src, :, :length])


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
        if cfg.acoustic_dim:
            # [K, in_vocab, acoustic_dim]; special tokens' rows stay zero. Saved with the weights.
            self.register_buffer("code_vectors", torch.zeros(cfg.n_codebooks, cfg.in_vocab, cfg.acoustic_dim))
            self.acoustic_norm = nn.LayerNorm(cfg.acoustic_dim)
            self.acoustic_proj = nn.Linear(cfg.acoustic_dim, cfg.d_model)
        self.apply(self._init)

    @torch.no_grad()
    def set_code_vectors(self, vectors: np.ndarray | torch.Tensor) -> None:
        """The codec's codebooks [>= n_codebooks, codebook_size, acoustic_dim] (training sets
        them once; a checkpoint carries them)."""
        if not self.cfg.acoustic_dim:
            raise ValueError("this model has no acoustic input (acoustic_dim = 0)")
        v = torch.as_tensor(np.asarray(vectors), dtype=self.code_vectors.dtype)
        want = (self.cfg.codebook_size, self.cfg.acoustic_dim)
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
            latent = F.embedding(tokens[:, 0], self.code_vectors[0])
            for q in range(1, self.cfg.n_codebooks):
                latent = latent + F.embedding(tokens[:, q], self.code_vectors[q])
            x = x + self.acoustic_proj(self.acoustic_norm(latent))
        return x + self.pos_emb(positions)

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

    def _full(self, tokens: torch.Tensor, voice: torch.Tensor, keep_kv: bool, prefix_len: torch.Tensor | None = None):
        """prefix_len [B]: each row's prefix length (where its reply starts); needed by
        `voice_at_reply` and `bidirectional_prefix`, ignored otherwise."""
        self._check(tokens)
        b, _, length = tokens.shape
        needs_prefix = self.cfg.voice_at_reply or self.cfg.bidirectional_prefix
        if needs_prefix and prefix_len is None:
            raise ValueError("this model needs each row's prefix length (prefix_len)")
        pos = torch.arange(length, device=tokens.device)
        x = self._embed(tokens, pos)
        x[:, 0] = x[:, 0] + self.voice_emb(voice)
        if self.cfg.voice_at_reply:
            rows = torch.arange(b, device=tokens.device)
            x[rows, prefix_len - 1] = x[rows, prefix_len - 1] + self.voice_emb(voice)
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
        return x, kvs

    def forward(
        self, tokens: torch.Tensor, voice: torch.Tensor, prefix_len: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher forcing: tokens [B, K, L] (position 0 = VOICE), voice [B] -> logits [B, K, L, V+1]."""
        x, _ = self._full(tokens, voice, keep_kv=False, prefix_len=prefix_len)
        return self._logits(x)

    def forward_with_hidden(
        self, tokens: torch.Tensor, voice: torch.Tensor, prefix_len: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As `forward`, plus the final hidden states [B, L, d] (for training-only heads)."""
        x, _ = self._full(tokens, voice, keep_kv=False, prefix_len=prefix_len)
        return self._logits(x), x

    @torch.no_grad()
    def prefill(self, tokens: torch.Tensor, voice: int, cache: KVCache, slot: int) -> torch.Tensor:
        """Run a prefix [K, P] for one stream into cache `slot`; return the last logits [K, V+1]."""
        length = tokens.shape[1]
        x, kvs = self._full(
            tokens.unsqueeze(0),
            torch.tensor([voice], device=tokens.device),
            keep_kv=True,
            prefix_len=torch.tensor([length], device=tokens.device),
        )
        for i, (k, v) in enumerate(kvs):
            cache.k[i][slot, :, :length].copy_(k[0])
            cache.v[i][slot, :, :length].copy_(v[0])
        return self._logits(x[:, -1:])[0, :, 0]

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
        span = int(positions.max()) + 1
        rows = torch.arange(n, device=tokens.device)
        mask = (torch.arange(span, device=tokens.device)[None, :] <= positions[:, None]).view(n, 1, 1, span)
        for i, blk in enumerate(self.blocks):
            x = x + blk.attn.step(blk.ln1(x), cache.k[i], cache.v[i], rows, positions, span, mask)
            x = x + blk.mlp(blk.ln2(x))
        return self._logits(x)[:, :, 0]
