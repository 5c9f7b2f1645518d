"""Weight-only quantized linear layers for the CPU (opt-in; not a default).

A decode step on the CPU reads every weight once for one token: it is bound by memory
bandwidth, so fewer bytes per weight is most of the speed there is. These layers keep the
activations in the model's dtype and the weights in int8 (one scale per output channel;
`torch._weight_int8pack_mm`) or int4 (a scale and zero per group of 32 inputs;
`torch._weight_int4pack_mm_for_cpu`, the layout gpt-fast and torchao use). Unlike
`quantize_dynamic` (models.quantize_int8) nothing is quantized per step. Figures and the
answers' agreement with unquantized ones: docs/performance.md (`bench/decode_levers.py`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

INT4_GROUP = 32
INT4_INNER_K_TILES = 2


class Int8WeightLinear(nn.Module):
    weight_int8: torch.Tensor
    scales: torch.Tensor

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127
        self.register_buffer("weight_int8", torch.round(weight / scale[:, None]).to(torch.int8))
        self.register_buffer("scales", scale.to(linear.weight.dtype))
        self.bias = linear.bias
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        out = torch._weight_int8pack_mm(rows, self.weight_int8, self.scales.to(x.dtype))
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


class Int4WeightLinear(nn.Module):
    weight_int4: torch.Tensor
    scales_and_zeros: torch.Tensor

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        packed, scales_and_zeros = quantize_int4(linear.weight)
        self.register_buffer("weight_int4", packed)
        self.register_buffer("scales_and_zeros", scales_and_zeros)
        self.bias = linear.bias
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        out = torch._weight_int4pack_mm_for_cpu(
            rows, self.weight_int4, INT4_GROUP, self.scales_and_zeros.to(x.dtype)
        )
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


def int4_grid(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each group of 32 inputs on a 16-level grid from its minimum to its maximum: the
    codes (not yet rounded), the groups' minimums and their steps, [out, in / 32, 32|1]."""
    rows = weight.shape[0]
    groups = weight.detach().float().reshape(rows, -1, INT4_GROUP)
    low, high = groups.amin(dim=-1, keepdim=True), groups.amax(dim=-1, keepdim=True)
    scales = (high - low).clamp(min=1e-12) / 15
    return (groups - low) / scales, low, scales


def pack_int4(
    q: torch.Tensor, low: torch.Tensor, scales: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole codes 0..15 with their grid → the kernel's packed weights and its scales and
    zeros ([in / 32, out, 2] in `dtype`)."""
    out_features = q.shape[0]
    packed = torch._convert_weight_to_int4pack_for_cpu(
        q.to(torch.int32).reshape(out_features, -1), INT4_INNER_K_TILES
    )
    zeros = low + scales * 8  # the kernel computes (q - 8) * scale + zero
    scales_and_zeros = torch.cat([scales, zeros], dim=-1).transpose(0, 1).contiguous()
    return packed, scales_and_zeros.to(dtype)


def quantize_int4(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`weight` [out, in] rounded to the 16-level grid of each group of 32 inputs and
    packed (`pack_int4`): an approximation unless the weights are 4-bit already."""
    codes, low, scales = int4_grid(weight.detach())
    return pack_int4(codes.round().clamp(0, 15), low, scales, weight.dtype)


def exact_int4(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """`weight` [out, in] packed for `torch._weight_int4pack_mm_for_cpu` (`pack_int4`), when
    every group of 32 inputs holds exactly 16 evenly spaced levels from its minimum to its
    maximum (as a Q4_1 GGUF's weights do), up to the rounding of the weight's own dtype;
    None when packing would round anything more than that."""
    out_features, in_features = weight.shape
    if in_features % INT4_GROUP or out_features % 16 or not looks_int4(weight):
        return None  # (the kernel's layout needs the first two)
    codes, low, scales = int4_grid(weight)
    q = codes.round()
    if not _on_grid(codes, q, weight.dtype):
        return None
    return pack_int4(q, low, scales, weight.dtype)


def looks_int4(weight: torch.Tensor) -> bool:
    """Whether the first rows of `weight` are on a 4-bit grid: a large model that is not
    4-bit is told apart without a pass over all of its weights."""
    codes = int4_grid(weight[:16])[0]
    return _on_grid(codes, codes.round(), weight.dtype)


def _on_grid(codes: torch.Tensor, q: torch.Tensor, dtype: torch.dtype) -> bool:
    # bf16 keeps 8 significant bits: a level of a 4-bit grid lands within a few hundredths
    # of a step of its code; any other weights miss by up to half a step.
    tolerance = 1e-3 if dtype == torch.float32 else 0.1
    return float((codes - q).abs().max()) <= tolerance


def quantize_weights(model: Any, bits: int) -> Any:
    """Replace every linear layer of `model` (the output layer too) in place; returns it."""
    kind = {8: Int8WeightLinear, 4: Int4WeightLinear}[bits]
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear and (bits == 8 or child.in_features % INT4_GROUP == 0):
                setattr(parent, name, kind(child))
    return model
