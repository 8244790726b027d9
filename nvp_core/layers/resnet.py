"""The s/t network of a coupling: a small ResNet, identity at initialisation.

Weight norm on convolutions and batch norm inside the blocks follow the paper;
the output convolution starts at zero so every coupling starts as the identity,
which is what lets deep flows train from step one.

Inference (eval mode, no autograd) takes a fast path: recomputing every
weight-normed kernel on each call cost about a third of a decode, so the
effective kernels are computed once and cached, with the batch norm that
directly follows a convolution folded into it. The cache is keyed on the
version counters and storage of every parameter and buffer *as the modules hold
them now* (looked up in each module's own ``_parameters``/``_buffers`` on every
call, so ``torch.func.functional_call``, which swaps those entries, is seen too),
so an optimizer step, ``load_state_dict``, ``.to()``, an in-place ``copy_`` or
other parameters passed by ``functional_call`` all invalidate it, and ``train()`` drops it (``eval()`` keeps it: ``RealNVP.evaluating()`` toggles
modes around every sample). Writes through ``.data`` bypass version counters;
call :meth:`ResNet.clear_cache` after such a write.

On the CPU the network runs in channels-last (NHWC) memory order: oneDNN's
convolutions, above all their backward pass at 16–32 channels, are up to 2.5×
faster that way; the couplings around it keep the ordinary layout.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def _conv(cin: int, cout: int, k: int) -> nn.Module:
    return weight_norm(nn.Conv2d(cin, cout, k, padding=k // 2, bias=True))


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode batch norm as y = x·scale + shift, per channel."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale, shift


def _forget_after_load(module: "ResNet", incompatible_keys) -> None:
    module.clear_cache()  # load_state_dict(assign=True) swaps the very tensors the cache key watches


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(width), nn.ReLU(), _conv(width, width, 3),
            nn.BatchNorm2d(width), nn.ReLU(), _conv(width, width, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)

    def fused(self) -> tuple[torch.Tensor, ...]:
        """(bn1 scale, bn1 shift, conv1 weight, conv1 bias, conv2 weight, conv2 bias) for
        eval mode, with the second batch norm folded into the first convolution."""
        bn1, _, conv1, bn2, _, conv2 = self.body
        s1, t1 = _bn_affine(bn1)
        s2, t2 = _bn_affine(bn2)
        w1 = conv1.weight * s2.view(-1, 1, 1, 1)
        b1 = conv1.bias * s2 + t2
        return (s1.view(1, -1, 1, 1), t1.view(1, -1, 1, 1), w1, b1, conv2.weight, conv2.bias)


class ResNet(nn.Module):
    def __init__(self, cin: int, cout: int, width: int, blocks: int) -> None:
        super().__init__()
        self.stem = _conv(cin, width, 3)
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.head_norm = nn.BatchNorm2d(width)
        self.head = nn.Conv2d(width, cout, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self._cache: tuple[tuple, list] | None = None
        self._slots: list[tuple[dict, str]] | None = None
        self.register_load_state_dict_post_hook(_forget_after_load)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channels-last on the CPU: oneDNN's convolutions (above all their backward at
        # 16-32 channels) are much faster in NHWC; the rest of the flow stays NCHW.
        cl = x.device.type == "cpu"
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        if not self.training and not torch.is_grad_enabled():
            params = self._inference_params(cl)
            if params is not None:
                return self._fast_forward(x, params).contiguous()
        h = self.blocks(self.stem(x))
        # The 1×1 head runs in NCHW: its weight gradient would otherwise come back with
        # channels-last strides, which DDP's gradient buckets reject (a warning and a copy).
        return self.head(torch.relu(self.head_norm(h)).contiguous())

    # ------------------------------------------------------------ inference path
    def train(self, mode: bool = True) -> "ResNet":
        if mode:  # training changes the weights anyway: free the cache's memory
            self.clear_cache()
        return super().train(mode)

    def _apply(self, fn, recurse=True):  # .to(), .double(), .cuda(): tensors move, cache goes
        self.clear_cache()
        return super()._apply(fn, recurse)

    def clear_cache(self) -> None:
        """Forget the cached inference kernels (they are rebuilt on the next eval call)."""
        self._cache = None

    def _key(self) -> tuple | None:
        if self._slots is None:  # where each tensor lives, not the tensor: swaps must show
            self._slots = [
                (table, name)
                for m in self.modules()
                for table in (m._parameters, m._buffers)
                for name, t in table.items() if t is not None
            ]
        try:
            return tuple((t._version, t.data_ptr()) for t in [table[name] for table, name in self._slots])
        except RuntimeError:  # inference tensors have no version counter: do not cache
            return None

    def _inference_params(self, channels_last: bool) -> list | None:
        key = self._key()
        if key is None:
            return None
        key = key + (channels_last,)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        mf = torch.channels_last if channels_last else torch.contiguous_format
        stem = self.stem
        sh, th = _bn_affine(self.head_norm)
        blocks = []
        for blk in self.blocks:
            s1, t1, w1, b1, w2, b2 = blk.fused()
            blocks.append((s1, t1, w1.contiguous(memory_format=mf), b1, w2.contiguous(memory_format=mf), b2))
        params = [
            (stem.weight.contiguous(memory_format=mf), stem.bias),
            blocks,
            (sh.view(1, -1, 1, 1), th.view(1, -1, 1, 1), self.head.weight.contiguous(memory_format=mf), self.head.bias),
        ]
        self._cache = (key, params)
        return params

    @staticmethod
    def _fast_forward(x: torch.Tensor, params: list) -> torch.Tensor:
        (w0, b0), blocks, (sh, th, wh, bh) = params
        h = F.conv2d(x, w0, b0, padding=w0.shape[-1] // 2)
        for s1, t1, w1, b1, w2, b2 in blocks:
            r = torch.relu_(torch.addcmul(t1, h, s1))
            r = torch.relu_(F.conv2d(r, w1, b1, padding=w1.shape[-1] // 2))
            h = F.conv2d(r, w2, b2, padding=w2.shape[-1] // 2).add_(h)
        r = torch.relu_(torch.addcmul(th, h, sh))
        return F.conv2d(r, wh, bh)
