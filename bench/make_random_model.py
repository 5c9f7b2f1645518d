"""Write a random-weight chat model with a real-size config (default: Qwen2.5-1.5B's shape).

    python bench/make_random_model.py /tmp/qwen-1.5b-random

No hub access: the tokenizer is the offline byte-level BPE of the test models; the vocabulary
size is Qwen2.5's, so the embedding and output layers have their real cost.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "backend"), str(ROOT)]

SHAPES: dict[str, dict[str, Any]] = {
    "qwen2.5-1.5b": {
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": True,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dest", type=Path)
    parser.add_argument("--shape", default="qwen2.5-1.5b", choices=sorted(SHAPES))
    args = parser.parse_args()
    import torch
    from tests.support.offline_models import tiny_qwen2
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, Qwen2Config

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen2())
    config = Qwen2Config(
        **SHAPES[args.shape],
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    auto_model: Any = AutoModelForCausalLM
    model = auto_model.from_config(config, dtype=torch.bfloat16)
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    model.save_pretrained(args.dest)
    tokenizer.save_pretrained(args.dest)
    print(f"{args.dest}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters")


if __name__ == "__main__":
    main()
