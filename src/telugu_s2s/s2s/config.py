"""`S2SConfig`: the S2S model's sizes and options, and its special token ids (stored with
every checkpoint)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

MAX_CONTEXT_TURNS = 10

# Special input tokens, offsets above codebook_size (same ids in every codebook).
EOS_OFFSET = 0  # also the output class index `codebook_size` of every head
PAD_OFFSET = 1  # filler (context positions of codebooks > 0, after a codebook finished)
SEP_OFFSET = 2
DELAY_OFFSET = 3  # reply steps before codebook q starts (s < q)
USER_TURN_OFFSET = 4
REPLY_TURN_OFFSET = 5
VOICE_OFFSET = 6
N_SPECIAL = 7


@dataclass(frozen=True)
class S2SConfig:
    n_codebooks: int = 2
    codebook_size: int = 1024
    n_layers: int = 4
    d_model: int = 256
    n_heads: int = 4
    ffn_mult: int = 4
    max_seq_len: int = 2048
    context_budget: int = 256  # positions (markers + tokens) given to earlier turns
    context_stride: int = 4  # keep every n-th first-codebook token of a context turn
    max_reply_frames: int = 600
    n_voices: int = 4
    dropout: float = 0.0  # embeddings and residual branches, training only
    frame_rate: float = 75.0  # codec frames per second (documentation, benchmarks)
    # Training only: classes of a linear head on the position that predicts the first reply
    # step (the SEP after the user turn). It learns which reply the turn asks for, so that
    # position has to carry what was said; generation never reads it. 0 = no head.
    aux_classes: int = 0
    # What helps the model hear the caller rather than recite (docs/training.md):
    # acoustic_dim > 0: every position also reads the codec's own dequantized latent of its
    # frame (the sum of its codes' codebook vectors, a frozen buffer copied from the codec)
    # through a learned projection, so frames that sound alike start out alike whoever speaks.
    acoustic_dim: int = 0
    # The voice embedding is added at the last prefix position (the SEP that predicts reply
    # step 0) too, next to where the reply starts, not only at position 0.
    voice_at_reply: bool = False
    # The prefix ([VOICE] [context] [SEP] [user] [SEP]) attends both ways: the whole user turn
    # is known at the end of speech, so each of its frames may read the ones after it. Reply
    # steps stay causal, and the KV-cache decode is unchanged (the prefix is one prefill).
    bidirectional_prefix: bool = False
    # The listener: a small encoder that hears the user turn alone, both ways, from the codec's
    # dequantized latent of each frame normalized over the turn (the mean and spread of each
    # latent dimension, which a voice and a line add to every frame, are taken out). Its pooled
    # vector is added at the last prefix position, where the reply starts; the prefix is one
    # prefill, so the KV-cache decode is unchanged. listener_layers = 0: no listener.
    # listener_latent_dim: the codec's latent size (its codebook vectors travel in the
    # checkpoint); listener_classes: training only, a head on the pooled vector that names
    # what was said (corpus intents); generation never reads it.
    listener_layers: int = 0
    listener_dim: int = 128
    listener_latent_dim: int = 0
    listener_classes: int = 0
    # The listener also steers every reply step: a second projection of its pooled vector is
    # added at the SEP where the reply starts and at each reply step after it, so the decoder
    # reads what was heard at every frame it writes, not only through attention back to one
    # position. The KV cache keeps that vector per stream (`KVCache.steer`).
    listener_every_step: bool = False
    # Training only: a CTC head over the listener's positions (each split in two) that spells
    # the user turn in characters (`listener_ctc_symbols` = the alphabet + the blank, 0 = none):
    # it makes the listener carry what was said, word by word, not only which question it was.
    # Generation never reads it.
    listener_ctc_symbols: int = 0

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by n_heads {self.n_heads}")
        if self.n_codebooks < 1 or self.codebook_size < 2:
            raise ValueError("n_codebooks must be >= 1 and codebook_size >= 2")
        if self.context_budget < 0 or self.context_stride < 1:
            raise ValueError("context_budget must be >= 0 and context_stride >= 1")
        if self.max_seq_len < self.context_budget + 8:
            raise ValueError("max_seq_len is too small for the context budget")
        if self.acoustic_dim < 0:
            raise ValueError("acoustic_dim must be >= 0")
        if self.listener_layers < 0 or self.listener_classes < 0:
            raise ValueError("listener_layers and listener_classes must be >= 0")
        if self.listener_every_step and not self.listener_layers:
            raise ValueError("listener_every_step needs a listener (listener_layers > 0)")
        if self.listener_ctc_symbols < 0 or (self.listener_ctc_symbols and not self.listener_layers):
            raise ValueError("listener_ctc_symbols must be >= 0, and needs a listener (listener_layers > 0)")
        if self.listener_layers:
            if self.listener_latent_dim <= 0:
                raise ValueError("a listener needs listener_latent_dim (the codec's latent size)")
            if self.acoustic_dim and self.acoustic_dim != self.listener_latent_dim:
                raise ValueError("acoustic_dim and listener_latent_dim both size the codec's latent: they must agree")
            if self.listener_dim % self.n_heads:
                raise ValueError(f"listener_dim {self.listener_dim} must be divisible by n_heads {self.n_heads}")

    @property
    def latent_dim(self) -> int:
        """Size of the codec latent the model reads (0 = it reads only code embeddings)."""
        return self.acoustic_dim or (self.listener_latent_dim if self.listener_layers else 0)

    # token ids
    @property
    def eos(self) -> int:
        return self.codebook_size + EOS_OFFSET

    @property
    def pad(self) -> int:
        return self.codebook_size + PAD_OFFSET

    @property
    def sep(self) -> int:
        return self.codebook_size + SEP_OFFSET

    @property
    def delay(self) -> int:
        return self.codebook_size + DELAY_OFFSET

    @property
    def user_turn(self) -> int:
        return self.codebook_size + USER_TURN_OFFSET

    @property
    def reply_turn(self) -> int:
        return self.codebook_size + REPLY_TURN_OFFSET

    @property
    def voice(self) -> int:
        return self.codebook_size + VOICE_OFFSET

    @property
    def in_vocab(self) -> int:
        return self.codebook_size + N_SPECIAL

    @property
    def out_vocab(self) -> int:
        """Output classes per head: the codes plus EOS (index codebook_size)."""
        return self.codebook_size + 1

    @property
    def drain_steps(self) -> int:
        """Reply steps after the last frame's step for the delay pattern (EOS included)."""
        return max(self.n_codebooks - 1, 1)

    def max_user_frames(self) -> int:
        """Longest user turn that still leaves room for a 1-frame reply at full context."""
        return self.max_seq_len - self.context_budget - 3 - self.drain_steps - 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> S2SConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown S2SConfig fields: {sorted(unknown)}")
        return cls(**d)
