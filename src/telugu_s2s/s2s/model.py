"""The S2S transformer: a decoder-only transformer over codec tokens.

Sequence layout (one position = one *frame step*; all codebooks of a position are embedded
and summed, see docs/services/s2s.md):

    [VOICE] [context ...] [SEP] [user frame 0 .. T-1] [SEP] -> reply steps ... [EOS]

* Codebooks: a **delay pattern** (MusicGen-style). Reply step ``s`` predicts codebook ``q`` of
  frame ``s - q`` with one output head per codebook, so one decoding step per audio frame
  (plus ``K - 1`` steps to drain the delay) instead of ``K`` steps with flattened codebooks.
  Because codebook ``q`` of frame ``t`` is predicted one step after codebook ``q - 1`` of the
  same frame, it is conditioned on the lower codebooks of its frame.
* Voice: position 0 carries a learned voice embedding (``n_voices`` rows).
* Context: a bounded budget of positions built from the last <= 10 turns: for each segment
  (user or reply turn) a turn marker followed by every ``context_stride``-th first-codebook
  token. The newest segments are kept first; the oldest are dropped (the one that crosses the
  budget is cut, keeping its newest tokens).
* EOS: predicted on codebook 0 at the step right after the last frame.

The serving API in one place (the Triton model, the decoder and the tools use it); the parts:
  config.py      S2SConfig and the special tokens
  network.py     S2STransformer and its KVCache
  layout.py      build_prefix, build_context, delayed_reply, undelay
  checkpoint.py  save / load / random weights
  decoding.py    generate (a single stream) and the batched DecodeEngine
Training batches and the loss are in telugu_s2s.training.batches (the service never imports
training code).
"""

from __future__ import annotations

from telugu_s2s.s2s.checkpoint import (
    FORMAT,
    LoadedS2S,
    load_checkpoint,
    load_model,
    random_model,
    read_config,
    save_checkpoint,
)
from telugu_s2s.s2s.config import MAX_CONTEXT_TURNS, S2SConfig
from telugu_s2s.s2s.decoding import generate
from telugu_s2s.s2s.layout import build_context, build_prefix, delayed_reply, undelay
from telugu_s2s.s2s.network import KVCache, S2STransformer

__all__ = [
    "FORMAT",
    "MAX_CONTEXT_TURNS",
    "KVCache",
    "LoadedS2S",
    "S2SConfig",
    "S2STransformer",
    "build_context",
    "build_prefix",
    "delayed_reply",
    "generate",
    "load_checkpoint",
    "load_model",
    "random_model",
    "read_config",
    "save_checkpoint",
    "undelay",
]
