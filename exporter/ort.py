"""ORT format for onnxruntime's reduced-size mobile builds.

Runs onnxruntime's own converter (``convert_onnx_models_to_ort``) with the
Fixed optimization style in a scratch directory; it names the operator config
after the model, which the bundle calls ``required_operators.config``.

Both outputs are made reproducible (issue 10.11: the same config and data give
the same bytes in every file):

* The converter writes the kernel type-string resolver of the ORT file from a
  hash map whose iteration order follows a per-process hash seed (absl hashes
  with an address, so it moves with ASLR): the same model came out with ~600
  bytes in a different order on each run. The resolver's content is the same
  every time, so skedge writes that part again in one fixed order (sorted by key,
  as the flatbuffer's sorted vectors already are) and keeps the model's own
  bytes exactly as onnxruntime wrote them.
* The config's comment names the file it was generated from, a path in the
  scratch directory: it becomes ``model.ort``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from skedge.runtime._errors import ExportError

__all__ = ["to_ort", "canonical_ort"]

_IDENTIFIER = b"ORTM"  # the InferenceSession file identifier (ort.fbs)
# vtable slots (4 + 2 * field id) of the tables written again; field ids as in onnxruntime's ort.fbs
_SESSION_VERSION, _SESSION_MODEL, _SESSION_RESOLVER = 4, 6, 10


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
        config = configs[0].read_text(encoding="utf-8")
        return canonical_ort(ort_file.read_bytes()), _without_paths(config).encode("utf-8")


def _without_paths(config: str) -> str:
    """The operator config with its "# - /tmp/…/model.ort" comment lines naming just the file."""
    return "".join(re.sub(r"^# - .*?([^/\\]+)$", r"# - \1", line) if line.startswith("# - ") else line
                   for line in config.splitlines(keepends=True))


# -- the resolver, written again in a fixed order ----------------------------------
def _table(buf: bytes, pos: int) -> Any:
    from flatbuffers.table import Table

    return Table(bytearray(buf), pos)


def _field(t: Any, slot: int) -> int:
    return int(t.Offset(slot))


def _string(t: Any, slot: int) -> bytes:
    o = _field(t, slot)
    return bytes(t.String(o + t.Pos)) if o else b""


def _tables(t: Any, slot: int) -> list[Any]:
    o = _field(t, slot)
    if not o:
        return []
    start = t.Vector(o)
    return [_table(t.Bytes, t.Indirect(start + 4 * j)) for j in range(t.VectorLen(o))]


def _resolver(buf: bytes, pos: int) -> list[tuple[bytes, list[tuple[bytes, list[tuple[int, int]]]]]]:
    """[(op id, [(kernel type string, [(arg type, index)])])], vectors sorted by their keys."""
    from flatbuffers import number_types as n

    out = []
    for op in _tables(_table(buf, pos), 4):
        entries = []
        for kts in _tables(op, 6):
            args = []
            for a in _tables(kts, 6):
                ot, oi = _field(a, 4), _field(a, 6)
                args.append((int(a.Get(n.Int8Flags, ot + a.Pos)) if ot else 0,
                             int(a.Get(n.Uint32Flags, oi + a.Pos)) if oi else 0))
            entries.append((_string(kts, 4), args))
        out.append((_string(op, 4), sorted(entries, key=lambda e: e[0])))
    return sorted(out, key=lambda e: e[0])


def canonical_ort(data: bytes) -> bytes:
    """The same ORT file with its kernel type-string resolver written in one fixed order.

    Everything before the resolver in onnxruntime's writing order (the model and the version string) is kept
    byte for byte, at the same distance from the end of the buffer, so every offset and alignment in it still
    holds. A file of an unexpected shape is returned unchanged (it is still a valid model, just not canonical).
    """
    import flatbuffers

    try:
        if len(data) < 8 or data[4:8] != _IDENTIFIER or len(data) % 8:
            return data
        root_pos = int.from_bytes(data[0:4], "little")
        root = _table(data, root_pos)
        model_slot, version_slot, resolver_slot = (_field(root, s) for s in
                                                   (_SESSION_MODEL, _SESSION_VERSION, _SESSION_RESOLVER))
        if not (model_slot and resolver_slot):
            return data
        model_pos = int(root.Indirect(model_slot + root.Pos))
        version_pos = int(root.Indirect(version_slot + root.Pos)) if version_slot else len(data)
        model_vtable = model_pos - int.from_bytes(data[model_pos:model_pos + 4], "little", signed=True)
        keep_from = min(model_pos, model_vtable)  # the model table and its vtable are written last of the model
        resolver_pos = int(root.Indirect(resolver_slot + root.Pos))
        if not (resolver_pos < keep_from <= version_pos) or root_pos >= keep_from:
            return data
        entries = _resolver(data, resolver_pos)

        tail = data[keep_from:]
        b = flatbuffers.Builder(len(data))
        b.head = len(b.Bytes) - len(tail)
        b.Bytes[b.head:] = tail
        b.minalign = 8
        model_off = len(data) - model_pos
        version_off = len(data) - version_pos if version_slot else 0
        ops = []
        for op_id, kts_list in entries:
            kts_offs = []
            for kts, args in kts_list:
                arg_offs = []
                for arg_type, index in args:
                    b.StartObject(2)
                    b.PrependInt8Slot(0, arg_type, 0)
                    b.PrependUint32Slot(1, index, 0)
                    arg_offs.append(b.EndObject())
                b.StartVector(4, len(arg_offs), 4)
                for o in reversed(arg_offs):
                    b.PrependUOffsetTRelative(o)
                args_vec = b.EndVector()
                name = b.CreateString(kts)
                b.StartObject(2)
                b.PrependUOffsetTRelativeSlot(0, name, 0)
                b.PrependUOffsetTRelativeSlot(1, args_vec, 0)
                kts_offs.append(b.EndObject())
            b.StartVector(4, len(kts_offs), 4)
            for o in reversed(kts_offs):
                b.PrependUOffsetTRelative(o)
            kts_vec = b.EndVector()
            op_name = b.CreateString(op_id)
            b.StartObject(2)
            b.PrependUOffsetTRelativeSlot(0, op_name, 0)
            b.PrependUOffsetTRelativeSlot(1, kts_vec, 0)
            ops.append(b.EndObject())
        b.StartVector(4, len(ops), 4)
        for o in reversed(ops):
            b.PrependUOffsetTRelative(o)
        ops_vec = b.EndVector()
        b.StartObject(1)
        b.PrependUOffsetTRelativeSlot(0, ops_vec, 0)
        resolver = b.EndObject()
        b.StartObject(4)
        if version_slot:
            b.PrependUOffsetTRelativeSlot(0, version_off, 0)
        b.PrependUOffsetTRelativeSlot(1, model_off, 0)
        b.PrependUOffsetTRelativeSlot(3, resolver, 0)
        b.Finish(b.EndObject(), file_identifier=_IDENTIFIER)
        out = bytes(b.Output())
        # the rewrite must say the same thing: the same resolver, the very same model bytes
        new_root = _table(out, int.from_bytes(out[0:4], "little"))
        new_model = int(new_root.Indirect(_field(new_root, _SESSION_MODEL) + new_root.Pos))
        new_resolver = int(new_root.Indirect(_field(new_root, _SESSION_RESOLVER) + new_root.Pos))
        if (_resolver(out, new_resolver) != entries or len(out) - new_model != model_off
                or out[len(out) - len(tail):] != tail):
            return data
        return out
    except (IndexError, ValueError, TypeError, AttributeError):
        return data
