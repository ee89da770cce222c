"""ORT format for onnxruntime's reduced-size mobile builds.

Runs onnxruntime's own converter (``convert_onnx_models_to_ort``) with the
Fixed optimization style in a scratch directory; it names the operator config
after the model, which the bundle calls ``required_operators.config``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from skedge.runtime._errors import ExportError

__all__ = ["to_ort"]


def to_ort(onnx_bytes: bytes) -> tuple[bytes, bytes]:
    """Return (model.ort bytes, required_operators.config bytes)."""
    with tempfile.TemporaryDirectory(prefix="skedge-ort-") as d:
        src = Path(d) / "model.onnx"
        src.write_bytes(onnx_bytes)
        out = Path(d) / "out"
        proc = subprocess.run(
            [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(src),
             "--optimization_style", "Fixed", "--output_dir", str(out)],
            capture_output=True, text=True, check=False,
        )
        ort_file = out / "model.ort"
        configs = sorted(out.glob("*.config"))
        if proc.returncode != 0 or not ort_file.exists() or not configs:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise ExportError("onnxruntime could not convert the model to ORT format: " + " | ".join(tail))
        return ort_file.read_bytes(), configs[0].read_bytes()
