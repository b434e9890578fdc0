"""ONNX Runtime sessions, built in one place for every model: options, threads, providers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: Where models run: the CPU (the ``onnxruntime`` package installed is the CPU build).
PROVIDERS: tuple[str, ...] = ("CPUExecutionProvider",)


def default_threads() -> int:
    """Intra-op threads when the caller sets none: 2, or 1 on a one-core machine."""
    return min(2, os.cpu_count() or 1)


def inference_session(model: Path | bytes, threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``model`` (a file or the model's bytes).

    ``threads`` caps the intra-op threads (use 1 in a worker pool, where the other workers keep
    the other cores busy). Operators run one at a time, and idle pool threads sleep instead of
    spinning: on a small machine shared with decoding and detection, spinning threads steal the
    cores the other work needs.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=list(PROVIDERS))
