"""Fixes for `encodec` 0.1.1's EMA codebook, applied by swapping the class of each codebook.

Two bugs in `encodec.quantization.core_vq.EuclideanCodebook.forward`:
1. Dead-code restart is undone in the same step: `expire_codes_` writes new vectors into
   `embed`, then the EMA update recomputes `embed = embed_avg / cluster_size` from the *old*
   sums, so the restarted codes fall back to their dead values. Here the EMA update runs
   first and a restart also resets the code's `embed_avg` and `cluster_size`, so the new
   vector survives.
2. k-means init on a first batch with fewer vectors than codes leaves codes dead forever.
   Here an uninitialized codebook is filled from the batch (sampled with small noise) and
   the restarts then keep reviving unused codes.

3. Restarts drawn from the current batch alone pull codes toward whatever the (possibly
   collapsed) latent of that batch is. Here every codebook keeps a ring buffer of its
   recent inputs (not part of the state dict) and restarts sample from it; and
   `kmeans_init_rvq` initializes all codebooks of a residual VQ by k-means over a large
   buffer of encoder latents (>= 10k frames from many crops), residual by residual.

The buffers and their names are unchanged, so state dicts load into a plain
`encodec` model (the codec service needs no patch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from encodec.quantization.core_vq import EuclideanCodebook


class FixedEuclideanCodebook(EuclideanCodebook):
    restart_threshold: float = 0.05  # EMA count below which a code is dead
    restart_count: float = 0.2  # EMA count a (re)started code starts from (~140 idle steps to die)
    init_noise: float = 0.01
    recent_size: int = 16384  # frames kept for restarts

    @torch.no_grad()
    def _remember(self, x: torch.Tensor) -> None:
        buf = getattr(self, "_recent", None)
        x = x.detach()
        if buf is None or buf.shape[1] != x.shape[1]:
            self._recent = x[-self.recent_size :].clone()
        else:
            self._recent = torch.cat([buf, x])[-self.recent_size :]

    def _restart_pool(self, x: torch.Tensor) -> torch.Tensor:
        buf = getattr(self, "_recent", None)
        return buf if buf is not None and buf.shape[0] >= x.shape[0] else x

    @torch.no_grad()
    def set_codebook(self, embed: torch.Tensor, counts: torch.Tensor | None = None) -> None:
        """Replace the codebook (and its EMA state) with `embed` [codebook_size, dim]."""
        if counts is None:
            counts = torch.full((self.codebook_size,), self.restart_count, device=embed.device)
        counts = counts.clamp(min=self.restart_count).to(embed)
        self.embed.data.copy_(embed)
        self.embed_avg.data.copy_(embed * counts.unsqueeze(1))
        self.cluster_size.data.copy_(counts)
        self.inited.data.fill_(1.0)

    @torch.no_grad()
    def init_embed_(self, data: torch.Tensor) -> None:  # type: ignore[override]
        if bool(self.inited):
            return
        idx = torch.randint(0, data.shape[0], (self.codebook_size,), device=data.device)
        embed = data[idx] + self.init_noise * data.std() * torch.randn_like(data[idx])
        self.embed.data.copy_(embed)
        self.embed_avg.data.copy_(embed * self.restart_count)
        self.cluster_size.data.fill_(self.restart_count)
        self.inited.data.fill_(1.0)

    @torch.no_grad()
    def _ema_and_restart(self, x: torch.Tensor, embed_ind: torch.Tensor) -> int:
        onehot = F.one_hot(embed_ind, self.codebook_size).type(x.dtype)
        self.cluster_size.data.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embed_avg.data.mul_(self.decay).add_((x.t() @ onehot).t(), alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (n + self.codebook_size * self.epsilon) * n
        self.embed.data.copy_(self.embed_avg / smoothed.unsqueeze(1))
        dead = self.cluster_size < self.restart_threshold
        n_dead = int(dead.sum())
        if n_dead and self.restart_threshold > 0:
            pool = self._restart_pool(x)
            idx = torch.randint(0, pool.shape[0], (n_dead,), device=x.device)
            new = pool[idx] + self.init_noise * pool.std() * torch.randn_like(pool[idx])
            self.embed.data[dead] = new
            # reset the EMA state of restarted codes so the next update keeps them
            self.embed_avg.data[dead] = new * self.restart_count
            self.cluster_size.data[dead] = self.restart_count
        return n_dead

    def forward(self, x: torch.Tensor):  # type: ignore[override]
        shape = x.shape
        x = self.preprocess(x)
        self.init_embed_(x.detach())
        embed_ind = self.quantize(x.detach())
        quantize = self.dequantize(embed_ind)
        if self.training:
            self._remember(x)
            self.last_restarts = self._ema_and_restart(x.detach(), embed_ind)
        embed_ind = self.postprocess_emb(embed_ind, shape)
        quantize = quantize.view(*shape)
        return quantize, embed_ind


def fix_quantizer(
    model, restart_threshold: float = 0.05, commitment_weight: float = 1.0, reset_init: bool = True
) -> list[FixedEuclideanCodebook]:
    """Swap every codebook of `model.quantizer` to the fixed class (in place)."""
    books = []
    for layer in model.quantizer.vq.layers:
        cb = layer._codebook
        cb.__class__ = FixedEuclideanCodebook
        cb.restart_threshold = restart_threshold
        cb.last_restarts = 0
        if reset_init:
            cb.inited.data.fill_(0.0)
        layer.commitment_weight = commitment_weight
        books.append(cb)
    return books


@torch.no_grad()
def kmeans(
    data: torch.Tensor, k: int, iters: int = 15, seed: int = 0, chunk: int = 8192
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain k-means (k-means++-lite: random distinct init). Returns (centroids [k, D], counts [k]).

    Empty clusters are re-seeded from the points farthest from their centroid.
    """
    g = torch.Generator(device="cpu").manual_seed(seed)
    n = data.shape[0]
    if n < k:
        raise ValueError(f"k-means needs at least {k} vectors, got {n}")
    cent = data[torch.randperm(n, generator=g)[:k]].clone()
    counts = torch.zeros(k)
    for _ in range(iters):
        assign = torch.empty(n, dtype=torch.long)
        dist = torch.empty(n)
        c2 = cent.pow(2).sum(1)
        for s in range(0, n, chunk):
            d = data[s : s + chunk].pow(2).sum(1, keepdim=True) - 2 * data[s : s + chunk] @ cent.t() + c2
            dist[s : s + chunk], assign[s : s + chunk] = d.min(1)
        counts = torch.bincount(assign, minlength=k).to(data.dtype)
        sums = torch.zeros_like(cent).index_add_(0, assign, data)
        nonempty = counts > 0
        cent[nonempty] = sums[nonempty] / counts[nonempty].unsqueeze(1)
        n_empty = int((~nonempty).sum())
        if n_empty:
            far = dist.topk(n_empty).indices
            cent[~nonempty] = data[far]
    return cent, counts


@torch.no_grad()
def kmeans_init_rvq(model, latents: torch.Tensor, iters: int = 15, seed: int = 0) -> list[float]:
    """Initialize every codebook of `model.quantizer` by k-means over `latents` [N, D].

    Codebook i is fit on the residual left by codebooks 0..i-1 (as the RVQ sees it).
    Returns each codebook's share of codes that got at least one vector.
    """
    residual = latents.detach().float().clone()
    usage = []
    for i, layer in enumerate(model.quantizer.vq.layers):
        cb = layer._codebook
        x = layer.project_in(residual)
        cent, counts = kmeans(x, cb.codebook_size, iters=iters, seed=seed + i)
        # every code starts alive at about the EMA count of a typical training batch
        cb.set_codebook(cent, torch.full_like(counts, 0.5))
        q = layer.project_out(cb.dequantize(cb.quantize(x)))
        residual = residual - q
        usage.append(float((counts > 0).float().mean()))
        cb._recent = x[-cb.recent_size :].clone()
    return usage
