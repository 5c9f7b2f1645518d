"""Attention for the decode loop, chosen explicitly per device, and the mask each one takes.

`grouped` (the default on the CPU and on CUDA): SDPA for prompt chunks, a lean kernel for
decode steps.

On the CPU, PyTorch's flash SDPA kernel is slow for a single query row (measured: 0.45 ms a
layer for one token against 500 cached ones, a quarter of a SmolLM2 decode step), and
transformers' eager path first copies the grouped keys and values once per query head. The
decode path here keeps grouped-query attention grouped: the query heads that share a key
head are stacked as rows of one matrix product. Prompt chunks (many queries) use SDPA.
On a GPU the same kernel reads each cached key once, where transformers' SDPA path with a
padding mask first repeats the keys and values for every query head (the fused kernels
take no mask together with grouped heads) and then falls back to PyTorch's math kernel.

`sdpa` and `eager` are transformers' own implementations, selectable for comparison; the
batch's padding mask is built in the form each takes (`decode_mask`): boolean for SDPA and
the grouped kernel, additive (0 / the dtype's minimum) for eager, which adds whatever mask
it gets to the scores. Flash-attention-2 is never chosen: it takes no 4D mask.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

ATTENTION_NAME = "tiangong"
# What `--attention` may name; auto is grouped everywhere.
CHOICES = ("auto", "grouped", "sdpa", "eager")
# Up to this many query positions take the grouped matrix-product path.
SMALL_QUERY = 4


def grouped_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """query [B, H, q, D], key/value [B, Hkv, T, D] → output [B, q, H, D] (transformers' layout)."""
    batch, heads, q_len, dim = query.shape
    if key.dtype != query.dtype:
        return _wide_attention(
            module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs
        )
    if q_len > SMALL_QUERY or kwargs.get("softcap") is not None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs
        )
    kv_heads, length = key.shape[1], key.shape[2]
    group = heads // kv_heads
    scale = scaling if scaling is not None else dim**-0.5
    # [B, Hkv, group*q, D]: the query heads sharing a key head become rows of one product.
    q = query.reshape(batch, kv_heads, group * q_len, dim)
    scores = torch.matmul(q, key.transpose(-1, -2)).float() * scale
    scores = scores.view(batch, kv_heads, group, q_len, length)
    if attention_mask is not None:
        mask = attention_mask[:, :, -q_len:, -length:].unsqueeze(1)  # [B, 1, 1|H?, q, T]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
    elif q_len > 1:
        causal = torch.ones(q_len, length, dtype=torch.bool, device=query.device).tril(
            length - q_len
        )
        scores = scores.masked_fill(~causal, float("-inf"))
    probs = torch.softmax(scores, dim=-1).to(value.dtype)
    out = torch.matmul(probs.view(batch, kv_heads, group * q_len, length), value)
    out = out.view(batch, heads, q_len, dim).transpose(1, 2).contiguous()
    return out, None


def _wide_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float,
    scaling: float | None,
    is_causal: bool | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention over a cache held wider than the model computes (fp32 states of a bf16
    model on the CPU, see `cache_dtype`): the query is widened, the output narrowed back."""
    narrow = query.dtype
    q_len, length = query.shape[2], key.shape[2]
    if q_len > SMALL_QUERY or kwargs.get("softcap") is not None:
        # Prompt chunks attend in the model's dtype, exactly as over a cache of that dtype.
        return sdpa_attention_forward(
            module,
            query,
            key.to(narrow),
            value.to(narrow),
            attention_mask,
            dropout,
            scaling,
            is_causal,
            **kwargs,
        )
    if attention_mask is None:
        mask = torch.ones(q_len, length, dtype=torch.bool, device=query.device)
        mask = mask.tril(length - q_len)[None, None]
    else:
        mask = attention_mask[:, :, -q_len:, -length:]
    return attend_wide(query, key, value, mask, scaling).transpose(1, 2).contiguous(), None


def attend_wide(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor,
    scaling: float | None,
) -> torch.Tensor:
    """Few queries [B, H, q, D] in the model's dtype over states held wider [B, Hkv, T, D]:
    one fp32 SDPA call, the output [B, H, q, D] back in the query's dtype. Always with a
    mask, even one that hides nothing: the kernel without one sums in another order, and a
    row must score the same alone as in a padded batch."""
    if mask.dtype != torch.bool:
        mask = mask.to(key.dtype)
    out = F.scaled_dot_product_attention(
        query.to(key.dtype), key, value, attn_mask=mask, scale=scaling, enable_gqa=True
    )
    return out.to(query.dtype)


def cache_dtype(name: str, device: str, model_dtype: torch.dtype) -> torch.dtype | None:
    """The dtype the key/value cache holds its states in (None: the model's).

    On the CPU with the grouped attention, a bf16 (or fp16) model's states are kept as
    fp32: PyTorch's fp32 SDPA kernel attends one query over them 2-3x faster than the bf16
    products do (bf16 SDPA is slower still), a sixth of a SmolLM2 decode step saved; the
    states are the same numbers (fp32 holds every bf16 value) at twice the memory, and the
    scores are computed without rounding them to bf16 first. Prompt chunks attend over the
    states narrowed back to the model's dtype, so a prompt's states are those a cache of
    the model's dtype would hold (attending in fp32 there changed 6 of the 38 development
    answers and lowered the figures; the decode steps alone changed 3 summaries' wording).
    `sdpa` and `eager` are transformers' own and take the model's dtype; a GPU keeps the
    model's dtype too."""
    if name == "grouped" and device == "cpu" and model_dtype in (torch.bfloat16, torch.float16):
        return torch.float32
    return None


def choose(requested: str, device: str) -> str:
    """The implementation to run: `requested`, or for auto the one measured best here."""
    if requested not in CHOICES:
        raise ValueError(f"attention must be one of {', '.join(CHOICES)}, not {requested!r}")
    return "grouped" if requested == "auto" else requested


def describe(name: str) -> str:
    """How the engine info and the log name an implementation."""
    if name == "grouped":
        return "grouped (decode steps), sdpa (prompt chunks)"
    return name


def install(model: Any, name: str) -> None:
    """Make `model` run attention `name` (see `choose`)."""
    if name == "grouped":
        AttentionInterface.register(ATTENTION_NAME, grouped_attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION_NAME, sdpa_mask)
        model.set_attn_implementation(ATTENTION_NAME)
    else:
        model.set_attn_implementation(name)


def decode_mask(valid: torch.Tensor, name: str, dtype: torch.dtype) -> torch.Tensor:
    """valid [rows, positions] (False: padding) → the 4D mask attention `name` takes."""
    mask = valid[:, None, None, :]
    if name == "eager":
        additive = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
        return additive.masked_fill(~mask, torch.finfo(dtype).min)
    return mask
