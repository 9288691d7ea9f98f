"""Streaming EnCodec: explicit per-stream state over the `encodec` package modules.

The SEANet encoder/decoder of a causal EnCodec model is a tree of
  SConv1d            causal convolution -> keep the last (kernel-1)*dilation-(stride-1) inputs
  SConvTranspose1d   causal transposed convolution -> keep the overlap-add tail (kernel-stride)
  SLSTM              LSTM with skip -> keep (h, c)
  SEANetResnetBlock  shortcut(x) + block(x)
  pointwise          ELU & co (no state)
`StreamingSEANet` walks that tree once and builds a list of streaming ops that share the
original module's weights (weight norm is folded once, see `fold_weight_norm`). A stream's
state is a `StreamState` (a list of tensors with a batch dimension of 1). Several streams are
advanced together by concatenating their state tensors along the batch dimension.

Equality with whole-signal processing (see docs/services/codec.md, "Streaming equality"):
- Encode input is processed in whole frames (hop_length samples). At segment end the last
  partial frame is padded with zeros, so the whole-signal reference is
  `model.encoder(x)` on the segment zero-padded to a multiple of hop_length. For such an
  input the SEANet adds no right padding anywhere, and every causal conv's left padding is
  exactly the zero context a fresh `StreamState` starts with.
- pad_mode="constant" (the project's own checkpoints): chunked == whole signal.
- pad_mode="reflect" (the official weights): the whole-signal model reflects the *first*
  samples of each layer's input into its left padding; deep layers see only 1 (encoder) or
  a few (decoder) steps per frame, so the whole-signal output of the first frames depends on
  later frames and cannot be streamed without look-ahead. The streaming reference is the
  same model with zero left padding (`zero_left_padding_reference`). The two agree except
  near the start of a segment (the difference measured is documented).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

# Elementwise modules that need no state (time steps are independent).
_POINTWISE = (nn.ELU, nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.Identity)


class StreamingError(ValueError):
    """The model cannot be run as a stream (non-causal layer, unsupported norm...)."""


@dataclass
class StreamState:
    """Per-stream model state: one tensor per stateful slot, batch dimension of size 1."""

    tensors: list[torch.Tensor] = field(default_factory=list)


class _Slots:
    """Allocates state slots while the op tree is built."""

    def __init__(self) -> None:
        self.factories: list = []  # fn(batch, device, dtype) -> Tensor
        self.batch_dims: list[int] = []

    def add(self, factory, batch_dim: int = 0) -> int:
        self.factories.append(factory)
        self.batch_dims.append(batch_dim)
        return len(self.factories) - 1


class _Op:
    def __call__(self, x: torch.Tensor, st: list[torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class _Pointwise(_Op):
    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, x, st):
        return self.module(x)


class _Seq(_Op):
    def __init__(self, ops: list[_Op]) -> None:
        self.ops = ops

    def __call__(self, x, st):
        for op in self.ops:
            x = op(x, st)
        return x


class _Residual(_Op):
    def __init__(self, shortcut: _Op, block: _Op) -> None:
        self.shortcut = shortcut
        self.block = block

    def __call__(self, x, st):
        return self.shortcut(x, st) + self.block(x, st)


def _norm_module(norm: nn.Module) -> nn.Module:
    # weight_norm / spectral_norm -> Identity here; ConvLayerNorm normalizes each time step
    # over channels (causal); GroupNorm over time is not causal.
    if isinstance(norm, nn.GroupNorm):
        raise StreamingError("time_group_norm normalizes over time and cannot stream")
    return norm


GEMM_CONV_MIN_CIN_K = 512


def cin_k(conv: nn.Conv1d) -> int:
    return conv.in_channels * conv.kernel_size[0]


class _Conv(_Op):
    """Causal SConv1d with its left context as state."""

    def __init__(self, sconv: nn.Module, slots: _Slots) -> None:
        if not sconv.causal:
            raise StreamingError("a non-causal SConv1d cannot stream; use a causal codec")
        conv: nn.Conv1d = sconv.conv.conv
        self.conv = conv
        self.norm = _norm_module(sconv.conv.norm)
        self.kernel = (conv.kernel_size[0] - 1) * conv.dilation[0] + 1
        self.stride = conv.stride[0]
        self.context = self.kernel - self.stride  # == SConv1d's padding_total
        cin = conv.in_channels
        # Wide convs on the few steps of a streaming chunk are much faster as one GEMM over
        # unfolded input than through torch's CPU conv kernel (measured: 256->512 channels,
        # kernel 16, stride 8, 24 steps: ~3 ms -> ~0.5 ms); narrow ones are faster as convs.
        self.w_mat = None
        if conv.groups == 1 and conv.padding[0] == 0 and cin_k(conv) >= GEMM_CONV_MIN_CIN_K:
            self.w_mat = conv.weight.reshape(conv.out_channels, -1).t().contiguous()
        self.slot = None
        if self.context > 0:
            ctx = self.context
            self.slot = slots.add(lambda b, dev, dt: torch.zeros(b, cin, ctx, device=dev, dtype=dt))

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        if self.w_mat is None:
            return self.conv(x)
        b = x.shape[0]
        u = x.unfold(2, self.kernel, self.stride)  # [B, Cin, n, span]
        if self.conv.dilation[0] > 1:
            u = u[..., :: self.conv.dilation[0]]
        n = u.shape[2]
        u = u.permute(0, 2, 1, 3).reshape(b * n, -1)
        if self.conv.bias is not None:
            y = torch.addmm(self.conv.bias, u, self.w_mat)
        else:
            y = u @ self.w_mat
        return y.view(b, n, -1).transpose(1, 2)

    def __call__(self, x, st):
        if self.slot is None:
            return self.norm(self._conv(x))
        buf = torch.cat([st[self.slot], x], dim=-1)
        n = (buf.shape[-1] - self.kernel) // self.stride + 1 if buf.shape[-1] >= self.kernel else 0
        st[self.slot] = buf[..., n * self.stride :]
        if n == 0:
            return x.new_zeros(x.shape[0], self.conv.out_channels, 0)
        return self.norm(self._conv(buf[..., : (n - 1) * self.stride + self.kernel]))


class _ConvTranspose(_Op):
    """Causal SConvTranspose1d with the overlap-add tail (kernel - stride samples) as state."""

    def __init__(self, sconvtr: nn.Module, slots: _Slots) -> None:
        if not sconvtr.causal or sconvtr.trim_right_ratio != 1.0:
            raise StreamingError("only causal SConvTranspose1d with trim_right_ratio=1 can stream")
        convtr: nn.ConvTranspose1d = sconvtr.convtr.convtr
        if convtr.groups != 1 or convtr.dilation[0] != 1 or convtr.padding[0] != 0:
            raise StreamingError("unsupported ConvTranspose1d configuration for streaming")
        self.convtr = convtr
        self.norm = _norm_module(sconvtr.convtr.norm)
        self.stride = convtr.stride[0]
        self.tail = convtr.kernel_size[0] - self.stride
        cout = convtr.out_channels
        tail = self.tail
        self.slot = slots.add(lambda b, dev, dt: torch.zeros(b, cout, tail, device=dev, dtype=dt))
        k = convtr.kernel_size[0]
        # A transposed conv whose kernel is a multiple of its stride (SEANet: kernel = 2 x ratio)
        # is one GEMM plus k/stride shifted adds: much faster on CPU for the few input steps of
        # a streaming chunk than torch's generic kernel (measured ~4 ms -> ~0.3 ms per call).
        self.groups = k // self.stride if k % self.stride == 0 else 0
        w = convtr.weight  # [Cin, Cout, K]
        self.w_mat = w.reshape(w.shape[0], -1).contiguous() if self.groups else None

    def _convtr(self, x: torch.Tensor) -> torch.Tensor:
        """conv_transpose1d(x, weight, stride) without bias: length T*stride + tail."""
        if not self.groups:
            return F.conv_transpose1d(x, self.convtr.weight, None, self.stride)
        b, _, t = x.shape
        s, g = self.stride, self.groups
        cout = self.convtr.out_channels
        z = torch.matmul(x.transpose(1, 2), self.w_mat)  # [B, T, Cout*K]
        z = z.view(b, t, cout, g, s).permute(3, 0, 2, 1, 4).reshape(g, b, cout, t * s)
        y = z.new_zeros(b, cout, (t + g - 1) * s)
        for j in range(g):
            y[..., j * s : j * s + t * s] += z[j]
        return y

    def __call__(self, x, st):
        n = x.shape[-1] * self.stride
        y = self._convtr(x)  # length n + tail
        prev = st[self.slot]
        if self.tail > n:  # tail longer than this chunk's output: carry the rest over
            head = y[..., : self.tail] + prev
            out = head[..., :n]
            st[self.slot] = torch.cat([head[..., n:], y[..., self.tail :]], dim=-1)
        else:
            y = torch.cat([y[..., : self.tail] + prev, y[..., self.tail :]], dim=-1)
            out = y[..., :n]
            st[self.slot] = y[..., n:]
        if self.convtr.bias is not None:
            out = out + self.convtr.bias[None, :, None]
        return self.norm(out)


class _LSTM(_Op):
    """SLSTM with (h, c) as state.

    The recurrence is computed here step by step with the module's weights: for the one or
    two time steps of a streaming chunk, torch's fused CPU LSTM kernel costs ~1.5 ms per call
    in set-up alone, while these few matmuls take tens of microseconds. Same arithmetic as
    nn.LSTM (gate order i, f, g, o), equal up to float summation order.
    """

    def __init__(self, slstm: nn.Module, slots: _Slots) -> None:
        lstm: nn.LSTM = slstm.lstm
        if lstm.bidirectional or lstm.proj_size or lstm.batch_first or not lstm.bias:
            raise StreamingError("only unidirectional LSTMs with bias and no projection can stream")
        self.lstm = lstm
        self.skip = slstm.skip
        layers, hidden = lstm.num_layers, lstm.hidden_size
        self.weights = [
            (
                getattr(lstm, f"weight_ih_l{k}").t().contiguous(),
                getattr(lstm, f"weight_hh_l{k}").t().contiguous(),
                getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}"),
            )
            for k in range(layers)
        ]
        mk = lambda b, dev, dt: torch.zeros(layers, b, hidden, device=dev, dtype=dt)  # noqa: E731
        self.h = slots.add(mk, batch_dim=1)
        self.c = slots.add(mk, batch_dim=1)

    def __call__(self, x, st):
        if x.shape[-1] == 0:
            return x
        inp = x.permute(2, 0, 1)  # [T, B, C]
        h_all, c_all = st[self.h], st[self.c]
        h_out, c_out = [], []
        y = inp
        for k, (w_ih, w_hh, b) in enumerate(self.weights):
            gates_x = torch.matmul(y, w_ih) + b  # [T, B, 4H], all steps at once
            h, c = h_all[k], c_all[k]
            outs = []
            for t in range(gates_x.shape[0]):
                gates = gates_x[t] + h @ w_hh
                i, f, g, o = gates.chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                outs.append(h)
            y = torch.stack(outs)
            h_out.append(h)
            c_out.append(c)
        st[self.h], st[self.c] = torch.stack(h_out), torch.stack(c_out)
        if self.skip:
            y = y + inp
        return y.permute(1, 2, 0)


def _build(module: nn.Module, slots: _Slots) -> _Op:
    from encodec.modules import SLSTM, SConv1d, SConvTranspose1d
    from encodec.modules.seanet import SEANetResnetBlock

    if isinstance(module, nn.Sequential):
        return _Seq([_build(m, slots) for m in module])
    if isinstance(module, SEANetResnetBlock):
        return _Residual(_build(module.shortcut, slots), _build(module.block, slots))
    if isinstance(module, SConv1d):
        return _Conv(module, slots)
    if isinstance(module, SConvTranspose1d):
        return _ConvTranspose(module, slots)
    if isinstance(module, SLSTM):
        return _LSTM(module, slots)
    if isinstance(module, _POINTWISE):
        return _Pointwise(module)
    raise StreamingError(f"no streaming rule for module {type(module).__name__}")


class StreamingSEANet:
    """A SEANet encoder or decoder run step by step with explicit per-stream state."""

    def __init__(self, seanet: nn.Module) -> None:
        self._slots = _Slots()
        self._op = _build(seanet.model, self._slots)
        p = next(seanet.parameters())
        self.device, self.dtype = p.device, p.dtype

    def new_state(self) -> StreamState:
        return StreamState([f(1, self.device, self.dtype) for f in self._slots.factories])

    def step(self, x: torch.Tensor, states: list[StreamState]) -> torch.Tensor:
        """Advance `len(states)` streams by one chunk each; x is [B, C, T]. Updates states."""
        if x.shape[0] != len(states):
            raise ValueError(f"batch of {x.shape[0]} inputs for {len(states)} states")
        if len(states) == 1:
            st = list(states[0].tensors)
        else:
            st = [torch.cat([s.tensors[i] for s in states], dim=bd) for i, bd in enumerate(self._slots.batch_dims)]
        y = self._op(x, st)
        if len(states) == 1:
            states[0].tensors = st
        else:
            parts = [torch.split(t, 1, dim=bd) for t, bd in zip(st, self._slots.batch_dims)]
            for j, s in enumerate(states):
                s.tensors = [p[j] for p in parts]
        return y


class StreamingHarmonic:
    """The harmonic decoder (`codec.harmonic`) behind `StreamingSEANet`'s interface.

    It runs in float64: its oscillator integrates F0 over the whole reply, so a difference in
    the last bit of one frame's F0 (float32 sums in another order for another chunking) grows
    into a phase drift (measured in float32: 4e-3 within 50 frames); in float64 chunked
    decoding equals whole-signal decoding to 2.5e-6 over 8 s (measured).
    """

    def __init__(self, decoder: nn.Module) -> None:
        self.decoder = decoder.double().eval()
        self.decoder.freeze()
        self.device = next(decoder.parameters()).device
        self._n_conv = len(decoder.dilations)

    def _pack(self, st) -> list[torch.Tensor]:
        return [*st.conv, st.f0, st.amps, st.phase, st.frame]

    def _unpack(self, tensors: list[torch.Tensor]):
        from telugu_s2s.codec.harmonic import HarmonicState

        n = self._n_conv
        return HarmonicState(list(tensors[:n]), *tensors[n:])

    def new_state(self) -> StreamState:
        return StreamState(self._pack(self.decoder.new_state(1, self.device)))

    def step(self, x: torch.Tensor, states: list[StreamState]) -> torch.Tensor:
        if x.shape[0] != len(states):
            raise ValueError(f"batch of {x.shape[0]} inputs for {len(states)} states")
        st = self._unpack([torch.cat(ts) for ts in zip(*(s.tensors for s in states))])
        y = self.decoder.step(x.double(), st)
        parts = [t.split(1) for t in self._pack(st)]
        for j, s in enumerate(states):
            s.tensors = [p[j] for p in parts]
        return y.float()


def _copy(model: nn.Module, arch) -> nn.Module:
    # deepcopy does not work on weight-normed modules (non-leaf `weight`): rebuild + load.
    from telugu_s2s.codec.checkpoint import build_model

    p = next(model.parameters())
    new = build_model(arch).to(p.device)
    new.load_state_dict(model.state_dict())
    return new


class _RVQ:
    """Residual VQ encode/decode with the codebook norms computed once.

    The same arithmetic as `encodec`'s EuclideanCodebook (so codes are bit-identical); the
    package recomputes |e|^2 of every code at every call, which dominates a one-frame step.
    """

    def __init__(self, vq: nn.Module) -> None:
        self.layers = []
        for layer in vq.layers:
            embed = layer._codebook.embed  # [bins, dim]
            embed_t = embed.t()
            self.layers.append(
                (layer.project_in, layer.project_out, embed, embed_t, embed_t.pow(2).sum(0, keepdim=True))
            )

    def encode(self, x: torch.Tensor, n_q: int) -> torch.Tensor:
        """x [B, D, T] -> codes [K, B, T]."""
        b, _, t = x.shape
        residual = x.transpose(1, 2)  # [B, T, D]
        out = []
        for project_in, project_out, embed, embed_t, embed_sq in self.layers[:n_q]:
            z = project_in(residual).reshape(b * t, -1)
            dist = -(z.pow(2).sum(1, keepdim=True) - 2 * z @ embed_t + embed_sq)
            ind = dist.max(dim=-1).indices.view(b, t)
            residual = residual - project_out(F.embedding(ind, embed))
            out.append(ind)
        return torch.stack(out)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [K, B, T] -> embedding [B, D, T]."""
        q = None
        for (_, project_out, embed, _, _), ind in zip(self.layers, codes):
            v = project_out(F.embedding(ind, embed))
            q = v if q is None else q + v
        return q.transpose(1, 2)


def fold_weight_norm(model: nn.Module, arch) -> nn.Module:
    """A copy of `model` (built from `arch`) with weight norm folded into plain weights."""
    from torch.nn.utils import remove_weight_norm

    model = _copy(model, arch)
    for m in model.modules():
        if hasattr(m, "weight_g") and hasattr(m, "weight_v"):
            remove_weight_norm(m)
    return model.eval()


def zero_left_padding_reference(model: nn.Module, arch) -> nn.Module:
    """A copy of `model` whose causal convs pad with zeros: the whole-signal reference that
    streaming reproduces when the model was built with pad_mode="reflect"."""
    return _copy(model, dataclasses.replace(arch, pad_mode="constant")).eval()


class StreamingCodec:
    """Batched streaming encode/decode for a `LoadedCodec` at one bandwidth.

    encode_batch: [B, n*hop] float audio in [-1, 1] -> [B, K, n] int64 codes
    decode_batch: [B, K, n] codes -> [B, n*hop] float audio
    Each call advances the given states; every stream in a batch gets the same n.
    """

    def __init__(self, loaded, bandwidth_kbps: float | None = None, device: str = "cpu") -> None:
        arch = loaded.arch
        if bandwidth_kbps is None:
            bandwidth_kbps = arch.default_bandwidth
        if arch.normalize:
            raise StreamingError("checkpoints with normalize=True rescale whole segments and cannot stream")
        if not arch.causal:
            raise StreamingError("a non-causal codec cannot stream")
        self.loaded = loaded
        self.arch = arch
        self.sample_rate = arch.sample_rate
        self.hop = arch.hop_length
        self.frame_rate = arch.frame_rate
        self.codebook_size = arch.bins
        self.n_codebooks = arch.codebooks_for(bandwidth_kbps)
        if self.n_codebooks > arch.n_q:
            raise ValueError(
                f"bandwidth {bandwidth_kbps} kbps needs {self.n_codebooks} codebooks but the model "
                f"has {arch.n_q}; use at most {max(arch.target_bandwidths)} kbps"
            )
        # The bandwidth the codes actually carry (what Info reports).
        self.bandwidth_kbps = self.n_codebooks * math.log2(arch.bins) * math.ceil(self.sample_rate / self.hop) / 1000
        self.device = torch.device(device)
        model = fold_weight_norm(loaded.model, arch).to(self.device)
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model
        self.encoder = StreamingSEANet(model.encoder)
        self.decoder: StreamingSEANet | StreamingHarmonic
        if arch.decoder == "harmonic":
            self.decoder = StreamingHarmonic(model.decoder)
        else:
            self.decoder = StreamingSEANet(model.decoder)
        self._vq = _RVQ(model.quantizer.vq)

    def new_encoder_state(self) -> StreamState:
        return self.encoder.new_state()

    def new_decoder_state(self) -> StreamState:
        return self.decoder.new_state()

    def encode_batch(self, audio: torch.Tensor, states: list[StreamState]) -> torch.Tensor:
        if audio.shape[-1] % self.hop:
            raise ValueError(f"encode input must be whole frames of {self.hop} samples")
        with torch.inference_mode():
            x = audio.to(self.device, self.model.encoder.model[0].conv.conv.weight.dtype)
            emb = self.encoder.step(x.view(x.shape[0], 1, -1), states)
            codes = self._vq.encode(emb, n_q=self.n_codebooks)  # [K, B, n]
            return codes.transpose(0, 1).cpu()

    def decode_batch(self, codes: torch.Tensor, states: list[StreamState]) -> torch.Tensor:
        with torch.inference_mode():
            c = codes.to(self.device).transpose(0, 1)  # [K, B, n]
            emb = self._vq.decode(c)
            y = self.decoder.step(emb, states)  # [B, 1, n * hop]
            return y[:, 0, :].float().cpu()

    # Whole-signal references (used by tests and the docs' equality bound).
    def reference_encode(self, audio: torch.Tensor, zero_left: bool = True) -> torch.Tensor:
        """Codes [B, K, n] for whole segments (already padded to whole frames)."""
        model = self.loaded.model
        if zero_left and self.arch.pad_mode != "constant":
            model = zero_left_padding_reference(model, self.arch)
        with torch.inference_mode():
            emb = model.encoder(audio.view(audio.shape[0], 1, -1))
            return model.quantizer.vq.encode(emb, n_q=self.n_codebooks).transpose(0, 1).cpu()

    def reference_decode(self, codes: torch.Tensor, zero_left: bool = True) -> torch.Tensor:
        model = self.loaded.model
        if zero_left and self.arch.pad_mode != "constant":
            model = zero_left_padding_reference(model, self.arch)
        with torch.inference_mode():
            emb = model.quantizer.vq.decode(codes.transpose(0, 1))
            if isinstance(self.decoder, StreamingHarmonic):  # the streaming decoder's float64 copy
                return self.decoder.decoder(emb.double())[:, 0, :].float().cpu()
            return model.decoder(emb)[:, 0, :].cpu()
