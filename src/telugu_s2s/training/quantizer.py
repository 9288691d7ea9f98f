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
            idx = torch.randint(0, x.shape[0], (n_dead,), device=x.device)
            new = x[idx] + self.init_noise * x.std() * torch.randn_like(x[idx])
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
            self.last_restarts = self._ema_and_restart(x.detach(), embed_ind)
        embed_ind = self.postprocess_emb(embed_ind, shape)
        quantize = quantize.view(*shape)
        return quantize, embed_ind


def fix_quantizer(model, restart_threshold: float = 0.05, commitment_weight: float = 1.0,
                  reset_init: bool = True) -> list[FixedEuclideanCodebook]:
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
