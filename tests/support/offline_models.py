"""Small chat models built offline (no hub), for tests and benchmarks.

Weights are random, tokenizers are trained here on text kept in the repository
(tests/fixtures/pages/); both are saved with `save_pretrained`, so they load through the
same `TransformersEngine.load(folder)` path a user's model takes. Builds are deterministic
(fixed seeds) and cached under `<repo>/.test-cache/models/<name>-<hash>/`, keyed by the
builder's parameters, this file's own source and the corpus, so a test session builds each
model once and an edit to either rebuilds.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.support.fixture_pages import GROUND_TRUTH, ground_truth

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_ROOT = REPO_ROOT / ".test-cache" / "models"

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Qwen2's own pre-tokenizer split; AutoTokenizer rebuilds Qwen2's tokenizer class with it.
QWEN2_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# A few Chinese characters and emoji get their own pieces; every other one goes through
# byte fallback, which is what streaming tests need to exercise.
EXTRA_TEXT = "天宫是一个本地的人工智能助手。今天天气很好。\n你好，世界！😀 👍\n"

TINY_LLAMA: dict[str, Any] = {"hidden": 128, "layers": 2, "heads": 4, "kv_heads": 2, "vocab": 2000}
BENCH_LLAMA: dict[str, Any] = {
    "hidden": 512,
    "layers": 8,
    "heads": 8,
    "kv_heads": 2,
    "vocab": 8000,
    "intermediate": 1792,
}
TINY_QWEN2: dict[str, Any] = {"hidden": 128, "layers": 2, "heads": 4, "kv_heads": 2, "vocab": 2000}


def corpus_lines() -> Iterator[str]:
    """News and blog text kept in the repository (the test pages' ground truth, mostly
    English) plus a little Chinese and emoji."""
    articles = ground_truth()
    for key in sorted(articles):
        yield from articles[key]["articleBody"].splitlines()
    yield from EXTRA_TEXT.splitlines()


def _train_sentencepiece_tokenizer(vocab: int) -> Any:
    import sentencepiece as spm
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import SpmConverter, import_protobuf

    model_file = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=corpus_lines(),
        model_writer=model_file,
        model_type="bpe",
        vocab_size=vocab,
        byte_fallback=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        # No dummy prefix: encode/decode round-trips exactly, leading spaces included.
        add_dummy_prefix=False,
        split_digits=True,
        user_defined_symbols=[IM_START, IM_END],
        unk_id=0,
        bos_id=1,
        # The chat template's <|im_end|> ends a turn; a second, non-special eos would leak.
        eos_id=-1,
        pad_id=-1,
        num_threads=1,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        max_sentence_length=1_000_000,
        minloglevel=2,
    )
    proto = import_protobuf().ModelProto()  # type: ignore[no-untyped-call]
    proto.ParseFromString(model_file.getvalue())
    pieces = {piece.piece: index for index, piece in enumerate(proto.pieces)}
    backend = SpmConverter.build_tokenizer_from_spm_proto(proto, pieces)  # type: ignore[no-untyped-call]
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token=IM_END,
        unk_token="<unk>",
        pad_token=IM_END,
        additional_special_tokens=[IM_START, IM_END],
        chat_template=CHATML_TEMPLATE,
    )


def _train_byte_level_tokenizer(vocab: int) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=["<|endoftext|>", IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus_lines(), trainer=trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        eos_token=IM_END,
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=[IM_START, IM_END],
        chat_template=CHATML_TEMPLATE,
    )


def _save_model(dest: Path, config: Any, tokenizer: Any, seed: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    torch.manual_seed(seed)
    auto_model: Any = AutoModelForCausalLM  # transformers' loaders are untyped
    model = auto_model.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        bos_token_id=config.bos_token_id,
    )
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)


def build_llama_model(
    dest: Path,
    *,
    hidden: int = 128,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    vocab: int = 2000,
    intermediate: int | None = None,
    context: int = 4096,
    seed: int = 0,
) -> Path:
    """A random-weight Llama chat model with a SentencePiece BPE (byte fallback) tokenizer."""
    from transformers import LlamaConfig

    tokenizer = _train_sentencepiece_tokenizer(vocab)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate or hidden * 3,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=context,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    _save_model(dest, config, tokenizer, seed)
    return dest


def build_qwen2_model(
    dest: Path,
    *,
    hidden: int = 128,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    vocab: int = 2000,
    context: int = 4096,
    seed: int = 0,
) -> Path:
    """A random-weight Qwen2 chat model with a byte-level BPE tokenizer (Qwen2's split)."""
    from transformers import Qwen2Config

    tokenizer = _train_byte_level_tokenizer(vocab)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 3,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=context,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    _save_model(dest, config, tokenizer, seed)
    return dest


def _source_digest() -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(GROUND_TRUTH.read_bytes())
    return digest.hexdigest()[:12]


def cached_model(name: str, builder: Callable[..., Path], params: dict[str, Any]) -> Path:
    """Build once per parameter set and code version; safe when two processes race."""
    key = json.dumps({"params": params, "source": _source_digest()}, sort_keys=True)
    folder = CACHE_ROOT / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if (folder / "config.json").exists():
        return folder
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=CACHE_ROOT))
    try:
        builder(staging, **params)
        try:
            os.rename(staging, folder)
        except OSError:
            # Another process finished first; its identical build stands.
            if not (folder / "config.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def tiny_llama() -> Path:
    """About 1.6M parameters: fast enough for every engine test."""
    return cached_model("tiny-llama", build_llama_model, TINY_LLAMA)


def bench_llama() -> Path:
    """About 35M parameters (hidden 512, 8 layers, 8 heads, 2 KV heads): for benchmarks."""
    return cached_model("bench-llama", build_llama_model, BENCH_LLAMA)


def tiny_qwen2() -> Path:
    return cached_model("tiny-qwen2", build_qwen2_model, TINY_QWEN2)
