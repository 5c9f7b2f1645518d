"""A decode step of our own for Llama-shaped models on the CPU: the same arithmetic as
transformers' forward pass with less around it, and 4-bit weights where the model's weights
are 4-bit already.

Why: a decode step computes one position per request. On the CPU its time went to reading
bf16 weights through matrix-vector kernels that reach a fraction of the memory bandwidth,
and to operator calls (mask building, hooks, module dispatch). Here q|k|v and gate|up are
one product each, RoPE turns q and k at once, attention over a cache held as fp32 is one
SDPA call with the batch's padding mask (else `engine/attention.py`'s grouped kernel), and
RMSNorm and RoPE are computed exactly as transformers computes them (tests hold the scores
equal to transformers' own).

4-bit: in a bf16 model, a layer whose weights take exactly 16 evenly spaced values per
group of 32 inputs (every linear layer of a Q4_1 GGUF, such as the embedded SmolLM2's) is
held a second time as int4 (`torch._weight_int4pack_mm_for_cpu`, 4-6x faster than bf16 here
for one row): nothing is lost but the bf16 rounding of each group's scale and zero, about
the size of the bf16 rounding the model already has. Prompt chunks (many rows) keep the
bf16 weights, which are faster there. Layers that are not exactly 4-bit run on their own
weights (no copy). The output layer of a bf16 model estimates every token's score from an
int4 copy and scores the best candidates again from its own weights (`OutputLayer`): the
token chosen is the one its own weights choose, at a fifth of the cost.

Used only where it is known to be right: a model of a type listed in `LLAMA_SHAPED` whose
modules have exactly the expected parts, on the CPU, with the grouped attention. Anything
else runs transformers' forward (`lean_decoder` returns None and says why in the log).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tiangong.engine.attention import attend_wide, decode_mask, grouped_attention
from tiangong.engine.quantize import INT4_GROUP, exact_int4, looks_int4, quantize_int4

log = logging.getLogger(__name__)

# Model types whose decoder layer is: RMSNorm, attention (q/k/v with optional bias, RoPE,
# grouped heads), residual, RMSNorm, SiLU-gated MLP, residual.
LLAMA_SHAPED = frozenset({"llama", "qwen2", "mistral"})
# Up to this many rows a product takes the int4 weights (measured 1.6-2x faster than bf16
# at 8 rows, 4-5x at one; a 256-token prompt chunk is 2x slower through int4).
INT4_ROWS = 8
# Tokens whose scores the output layer computes exactly after estimating all of them
# (`OutputLayer`): more than top-k sampling's 50, few enough to cost ~0.05 ms.
CANDIDATES = 64


class Projection:
    """Linear layers that read the same input, as one product where their weights allow."""

    def __init__(self, linears: list[nn.Linear]) -> None:
        self.linears = linears
        self.sizes = [linear.out_features for linear in linears]
        self.bias: torch.Tensor | None = None
        if any(linear.bias is not None for linear in linears):
            self.bias = torch.cat(
                [
                    linear.bias.detach()
                    if linear.bias is not None
                    else linear.weight.new_zeros(linear.out_features)
                    for linear in linears
                ]
            )
        # The int4 kernel is fast with bf16 activations only (10x slower than fp32 products
        # with fp32 ones): fp32 models, chosen on CPUs without bf16, keep their weights.
        self.int4: tuple[torch.Tensor, torch.Tensor] | None = None
        if all(
            linear.weight.dtype == torch.bfloat16 and looks_int4(linear.weight)
            for linear in linears
        ):
            self.int4 = exact_int4(torch.cat([linear.weight.detach() for linear in linears]))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [rows, in] → [rows, the layers' outputs side by side]."""
        if self.int4 is not None and x.shape[0] <= INT4_ROWS:
            packed, scales_and_zeros = self.int4
            out = torch._weight_int4pack_mm_for_cpu(x, packed, INT4_GROUP, scales_and_zeros)
            if self.bias is not None:
                out = out + self.bias
            return out
        if len(self.linears) == 1:
            return F.linear(x, self.linears[0].weight, self.linears[0].bias)
        return torch.cat([F.linear(x, linear.weight, linear.bias) for linear in self.linears], -1)


class OutputLayer:
    """The output layer of a bf16 model: every token's score estimated from an int4 copy
    of its weights (5x faster than bf16 for one row here: 0.4 against 1.9 ms for SmolLM2's
    49,152 x 576), then the `CANDIDATES` best estimates scored again from the layer's own
    weights, exactly as the full product scores them (bit for bit: the same kernel, each
    token's score its own dot product). Greedy decoding, the n-gram ban and top-k/top-p
    sampling read only the best scores, so they choose as from the exact layer; the other
    scores are estimates within a few percent (nothing reads them but a softmax's tail).

    Up to `INT4_ROWS` rows; more (never in decode steps today) take the layer's weights."""

    def __init__(self, linear: nn.Linear) -> None:
        self.linear = linear
        self.int4: tuple[torch.Tensor, torch.Tensor] | None = None
        weight = linear.weight.detach()
        out_features, in_features = weight.shape
        if (
            weight.dtype == torch.bfloat16
            and linear.bias is None
            and in_features % INT4_GROUP == 0
            and out_features % 16 == 0
            and out_features > CANDIDATES
        ):
            self.int4 = quantize_int4(weight)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [rows, hidden] → scores [rows, vocab]."""
        if self.int4 is None or x.shape[0] > INT4_ROWS:
            return F.linear(x, self.linear.weight, self.linear.bias)
        packed, scales_and_zeros = self.int4
        scores = torch._weight_int4pack_mm_for_cpu(x, packed, INT4_GROUP, scales_and_zeros)
        best = scores.topk(CANDIDATES, dim=-1).indices  # [rows, candidates]
        exact = torch.bmm(self.linear.weight[best], x[:, :, None])[..., 0]
        return scores.scatter_(1, best, exact)


class LeanLayer:
    def __init__(self, layer: Any) -> None:
        attn, mlp = layer.self_attn, layer.mlp
        self.input_norm = layer.input_layernorm
        self.post_norm = layer.post_attention_layernorm
        self.qkv = Projection([attn.q_proj, attn.k_proj, attn.v_proj])
        self.out = Projection([attn.o_proj])
        self.gate_up = Projection([mlp.gate_proj, mlp.up_proj])
        self.down = Projection([mlp.down_proj])
        self.attention = attn
        self.scaling = float(attn.scaling)


def rms_norm(norm: Any, x: torch.Tensor) -> torch.Tensor:
    """transformers' LlamaRMSNorm: in fp32, x * rsqrt(mean(x²) + eps), back to x's dtype,
    times the weight. PyTorch's own `rms_norm` computes the fp32 part as those operations
    do (bit for bit, tested) in one call instead of five."""
    hidden = F.rms_norm(x.to(torch.float32), x.shape[-1:], eps=norm.variance_epsilon)
    out: torch.Tensor = norm.weight * hidden.to(x.dtype)
    return out


def signed_sin(sin: torch.Tensor) -> torch.Tensor:
    """RoPE's rotate_half(x) * sin, which is cat(-x2, x1) * sin, equals
    roll(x, half) * cat(-sin1, sin2): one roll instead of two slices, a negation and a cat
    per layer (bit for bit: negation is exact)."""
    half = sin.shape[-1] // 2
    return torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)


class LeanDecoder(nn.Module):
    """One decode step for every row of a batch: ids [rows, 1] → scores [rows, vocab].

    An `nn.Module` so that forward hooks see its calls as they see the model's."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        config = model.config
        inner = model.model
        self.embed = inner.embed_tokens
        self.rotary = inner.rotary_emb
        self.final_norm = inner.norm
        self.lm_head = OutputLayer(model.lm_head)
        self.heads = int(config.num_attention_heads)
        self.kv_heads = int(config.num_key_value_heads)
        self.head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // self.heads)
        self.layers = [LeanLayer(layer) for layer in inner.layers]
        projections = [p for layer in self.layers for p in (layer.qkv, layer.out, layer.gate_up)]
        projections += [layer.down for layer in self.layers]
        self.int4_layers = sum(len(p.linears) for p in projections if p.int4 is not None)
        self.linear_layers = sum(len(p.linears) for p in projections)

    def describe(self) -> str:
        parts = []
        if self.int4_layers:
            parts.append(f"{self.int4_layers} of {self.linear_layers} linear layers as exact int4")
        if self.lm_head.int4 is not None:
            parts.append(f"output layer estimated from int4, its best {CANDIDATES} exact")
        return f"lean ({'; '.join(parts)})" if parts else "lean"

    @torch.inference_mode()
    def forward(
        self,
        *,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        valid: torch.Tensor | None,
        cache: Any,
    ) -> torch.Tensor:
        rows = input_ids.shape[0]
        heads, kv_heads, dim = self.heads, self.kv_heads, self.head_dim
        x = self.embed(input_ids)  # [rows, 1, hidden]
        cos, sin = self.rotary(x, position_ids)  # [rows, 1, dim]
        sin, half = signed_sin(sin), dim // 2
        x = x[:, 0]
        mask = None if valid is None else decode_mask(valid, "grouped", x.dtype)
        rotated = heads + kv_heads  # q and k heads, side by side in the q|k|v product
        for index, layer in enumerate(self.layers):
            h = rms_norm(layer.input_norm, x)
            qkv = layer.qkv(h).view(rows, rotated + kv_heads, dim)
            qk = qkv[:, :rotated]
            qk = qk * cos + qk.roll(half, dims=-1) * sin  # RoPE on q and k at once
            keys, values = cache.layers[index].append(qk[:, heads:, None], qkv[:, rotated:, None])
            if keys.dtype != x.dtype:  # states held wider (attention.cache_dtype)
                if mask is None:  # no padding: a mask that hides nothing, as the batch's kernel
                    mask = torch.ones(rows, 1, 1, keys.shape[2], dtype=torch.bool)
                attended = attend_wide(qk[:, :heads, None], keys, values, mask, layer.scaling)
            else:
                attended, _ = grouped_attention(
                    layer.attention, qk[:, :heads, None], keys, values, mask, scaling=layer.scaling
                )
            x = x + layer.out(attended.reshape(rows, heads * dim))
            h = rms_norm(layer.post_norm, x)
            gate, up = torch.split(layer.gate_up(h), layer.gate_up.sizes, dim=-1)
            x = x + layer.down(F.silu(gate) * up)
        x = rms_norm(self.final_norm, x)
        out: torch.Tensor = self.lm_head(x)
        return out


def why_not_lean(model: Any) -> str | None:
    """None when `model` has exactly the parts `LeanDecoder` computes; else what differs."""
    config = model.config
    kind = getattr(config, "model_type", "")
    if kind not in LLAMA_SHAPED:
        return f"model type {kind!r}"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act}"
    if getattr(config, "pretraining_tp", 1) not in (None, 1):
        return "tensor-parallel pretraining layout"
    if getattr(config, "mlp_bias", False):
        return "MLP biases"
    layer_types = getattr(config, "layer_types", None) or ["full_attention"]
    if set(layer_types) != {"full_attention"}:
        return "sliding-window layers"
    inner = getattr(model, "model", None)
    needed = ("embed_tokens", "rotary_emb", "norm", "layers")
    if inner is None or not all(hasattr(inner, name) for name in needed):
        return "an unexpected module layout"
    if not isinstance(getattr(model, "lm_head", None), nn.Linear):
        return "an unexpected output layer"
    for layer in inner.layers:
        attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        parts = [getattr(attn, n, None) for n in ("q_proj", "k_proj", "v_proj", "o_proj")]
        parts += [getattr(mlp, n, None) for n in ("gate_proj", "up_proj", "down_proj")]
        if attn is None or not all(type(p) is nn.Linear for p in parts):
            return "layers that are not plain linear layers (quantized?)"
        norms = (
            getattr(layer, "input_layernorm", None),
            getattr(layer, "post_attention_layernorm", None),
        )
        if not all(hasattr(n, "variance_epsilon") and hasattr(n, "weight") for n in norms):
            return "an unexpected normalization"
        extra = set(dict(attn.named_children())) - {"q_proj", "k_proj", "v_proj", "o_proj"}
        if extra:
            return f"attention parts {sorted(extra)}"
    return None


def lean_decoder(model: Any) -> LeanDecoder | None:
    """The lean decode step for `model`, or None (it runs transformers' forward)."""
    reason = why_not_lean(model)
    if reason is not None:
        log.info("decode steps run transformers' forward: %s", reason)
        return None
    return LeanDecoder(model)
