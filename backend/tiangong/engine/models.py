"""Finding, converting and loading a chat model for the transformers engine.

A model spec is one of: None (the embedded SmolLM2), a local folder saved with
`save_pretrained`, a `.gguf` file, or a Hugging Face hub id. GGUF files are dequantized
once into a safetensors folder under `<data_dir>/models/` (loading a GGUF through
transformers dequantizes on every load, ~17 s for the embedded model; the folder loads in
under a second).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tiangong.engine.embedded import EMBEDDED_MODEL_NAME, embedded_gguf_path
from tiangong.errors import BadRequestError, EngineFailedError, ModelNotFoundError, UnsupportedError

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]
SourceKind = Literal["embedded", "folder", "gguf", "hub"]

# Bumped when the conversion's output changes, so stale folders are not reused.
GGUF_CONVERSION_VERSION = 1
# Files a chat model needs from the hub (weights, config, tokenizer, chat template).
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]


@dataclass(frozen=True)
class ModelSource:
    kind: SourceKind
    label: str
    path: Path | None = None
    hub_id: str | None = None


def resolve_model_spec(model: str | None) -> ModelSource:
    """Tell apart the embedded default, a folder, a .gguf file and a hub id."""
    if model is None or model.strip() == "":
        path = embedded_gguf_path()
        return ModelSource("embedded", EMBEDDED_MODEL_NAME, path=path)
    spec = model.strip()
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{spec} is a folder but holds no config.json (not a model)")
        return ModelSource("folder", path.resolve().name, path=path.resolve())
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise BadRequestError(f"{spec} is a file but not a .gguf model")
        return ModelSource("gguf", path.name, path=path.resolve())
    if not HUB_ID.fullmatch(spec) or spec.lower().endswith(".gguf"):
        raise ModelNotFoundError(f"model {spec} not found: no such folder or file")
    return ModelSource("hub", spec, hub_id=spec)


def gguf_folder_for(gguf: Path, data_dir: Path) -> Path:
    """The converted folder for a GGUF file, keyed by its name, size and mtime."""
    stat = gguf.stat()
    key = f"{gguf.name}|{stat.st_size}|{stat.st_mtime_ns}|v{GGUF_CONVERSION_VERSION}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return data_dir / "models" / f"{gguf.stem}-{digest}"


def ensure_gguf_converted(
    gguf: Path, data_dir: Path, progress: ProgressCallback | None = None
) -> Path:
    """Convert a GGUF file to a safetensors folder once; later calls return the folder."""
    folder = gguf_folder_for(gguf, data_dir)
    if (folder / "config.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting %s to %s (once)", gguf, folder)
    if progress is not None:
        progress("convert", 0, 1)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        _convert_gguf(gguf, staging)
        try:
            os.rename(staging, folder)
        except OSError:
            # Another process converted the same file first; keep its folder.
            if not (folder / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if progress is not None:
        progress("convert", 1, 1)
    return folder


def _convert_gguf(gguf: Path, dest: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    auto_model: Any = AutoModelForCausalLM  # transformers' loaders are untyped
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantized = auto_model.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    except Exception as exc:
        raise UnsupportedError(f"cannot read {gguf.name} as a transformers model: {exc}") from exc
    # A GGUF-loaded model refuses save_pretrained: rebuild it from its config without the
    # quantization entry and move the dequantized weights across, all of them.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = auto_model.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(quantized.state_dict(), strict=True)
    fresh.generation_config = quantized.generation_config
    fresh.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    (dest / "tiangong-source.json").write_text(
        json.dumps({"gguf": gguf.name, "size": gguf.stat().st_size}), encoding="utf-8"
    )


def download_hub_model(hub_id: str, progress: ProgressCallback | None = None) -> Path:
    """Fetch a hub model (or find it in the local hub cache); a terminal bar shows progress."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils.tqdm import tqdm as hub_tqdm

    class ReportingBar(hub_tqdm):  # type: ignore[misc]
        """The hub's terminal bar, also reporting byte counts to `progress`."""

        def update(self, n: float | None = 1) -> bool | None:
            shown: bool | None = super().update(n)
            counts_bytes = self.unit == "B" and bool(self.total)
            # The transfer bar ("Downloading bytes") repeats the reconstruction bar's count.
            duplicate = str(self.desc).startswith("Downloading")
            if progress is not None and counts_bytes and not duplicate:
                progress("download", int(self.n), int(self.total))
            return shown

    try:
        folder = snapshot_download(hub_id, allow_patterns=HUB_PATTERNS, tqdm_class=ReportingBar)
    except Exception as exc:
        raise ModelNotFoundError(
            f"could not download {hub_id}: no network / not found ({type(exc).__name__})"
        ) from exc
    return Path(folder)


def pick_device(device: str) -> str:
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise BadRequestError(f"device must be auto, cpu or cuda, not {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UnsupportedError("device cuda asked for, but torch sees no CUDA GPU")
    return device


def pick_dtype(dtype: str, device: str) -> Any:
    """bf16 on CUDA (fp16 on GPUs without bf16), fp32 on CPU, unless `dtype` names one."""
    import torch

    named = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    aliases = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
    dtype = aliases.get(dtype, dtype)
    if dtype == "auto":
        if device == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in named:
        raise BadRequestError(f"dtype must be auto, float32, bfloat16 or float16, not {dtype!r}")
    return named[dtype]


def quantize_int8(model: Any) -> Any:
    """Opt-in (`--dtype int8`, CPU): linear layers with int8 weights and dynamically
    quantized activations. A decode step reads a quarter of the fp32 weight bytes; answers
    differ slightly from fp32 ones (as a 4-bit GGUF's differ too)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the API is deprecated in favour of torchao
        quantize: Any = torch.ao.quantization.quantize_dynamic  # untyped
        return quantize(model, {torch.nn.Linear}, dtype=torch.qint8)


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def configure_cpu_threads() -> int:
    """One torch thread per core this process may use (not per core of the machine)."""
    import torch

    threads = available_cores()
    torch.set_num_threads(threads)
    return threads


def model_folder(
    source: ModelSource, data_dir: Path, progress: ProgressCallback | None = None
) -> Path:
    """A local folder `from_pretrained` can read, converting or downloading as needed."""
    if source.kind == "folder" and source.path is not None:
        return source.path
    if source.kind in ("embedded", "gguf") and source.path is not None:
        return ensure_gguf_converted(source.path, data_dir, progress)
    if source.hub_id is not None:
        return download_hub_model(source.hub_id, progress)
    raise ModelNotFoundError(f"model {source.label} not found")


def load_model_and_tokenizer(folder: Path, device: str, dtype: Any) -> tuple[Any, Any]:
    """Load the weights and tokenizer; a chat template is required."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    auto_model: Any = AutoModelForCausalLM  # transformers' loaders are untyped
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = auto_model.from_pretrained(folder, dtype=dtype)
    except Exception as exc:
        raise EngineFailedError(f"could not load the model in {folder.name}: {exc}") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise UnsupportedError(
            f"{folder.name} has no chat template; Tiangong needs an instruct (chat) model"
        )
    model.to(device)
    model.eval()
    return model, tokenizer
