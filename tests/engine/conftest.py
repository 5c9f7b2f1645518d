"""Engine tests load real models built offline through the same path users take."""

from __future__ import annotations

import os

# Before torch is imported anywhere: spinning OpenMP threads collapse decode speed on a
# shared machine, and no test may reach for a model hub.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.offline_models import tiny_llama, tiny_qwen2

from tiangong.engine.transformers_engine import TransformersEngine


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def llama_engine(data_dir: Path) -> Iterator[TransformersEngine]:
    # fp32 pinned: token-exact comparisons need one dtype.
    engine = TransformersEngine.load(str(tiny_llama()), data_dir=data_dir, dtype="float32")
    yield engine


@pytest.fixture(scope="session")
def qwen2_engine(data_dir: Path) -> Iterator[TransformersEngine]:
    engine = TransformersEngine.load(str(tiny_qwen2()), data_dir=data_dir, dtype="float32")
    yield engine


@pytest.fixture
def llama(llama_engine: TransformersEngine) -> Iterator[TransformersEngine]:
    """The shared tiny Llama engine, with its tunables restored after each test."""
    chunk, banned = llama_engine.prefill_chunk_tokens, llama_engine.banned_ngram
    yield llama_engine
    llama_engine.prefill_chunk_tokens, llama_engine.banned_ngram = chunk, banned
