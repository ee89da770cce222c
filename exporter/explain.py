"""The export's explanation step: ``explain.onnx``, checked on the export sample, and the global importances.

Called once by ``build`` (``_export.py``). A pipeline skedge does not explain still exports; the manifest's
``explain.reason`` says why, and ``model.explain`` repeats it in one line.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skedge.runtime._errors import ExportError, SkedgeError
from skedge.runtime._schema import Schema
from skedge.runtime.explain import EXPLAIN_FILE, Explainer, Explanation

from ._schema import rows_to_json
from ._steps import pipeline_steps
from .onnx import set_metadata
from .onnx.explain import Unexplained, explain_family, to_explain_onnx

__all__ = ["Explained", "build_explanations", "importances", "importance_plot", "IMPORTANCE_PLOT", "SUM_BOUND"]

IMPORTANCE_PLOT = "report/importances.png"
SUM_BOUND = 1e-6  # the bound on |bias + sum(contributions) - output|; the graph reaches ~1e-15


@dataclass(frozen=True)
class Explained:
    files: dict[str, bytes] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # manifest["explain"]


def _transformed_mean(pipeline: Any, sample: pd.DataFrame) -> np.ndarray:
    steps = pipeline_steps(pipeline)
    z: Any = sample
    for _, step in steps[:-1]:
        if step is None or step == "passthrough":
            continue
        z = step.transform(z)
    return np.asarray(z, dtype=np.float64).mean(axis=0)


def _reference_output(pipeline: Any, sample: pd.DataFrame, task: str) -> np.ndarray:
    if task == "classification":
        return np.asarray(pipeline.predict_proba(sample), dtype=np.float64)
    return np.asarray(pipeline.predict(sample), dtype=np.float64).reshape(-1)


def importances(ex: Explanation) -> dict[str, float]:
    """Mean absolute contribution per input feature over the rows (and the classes), largest first."""
    c = np.abs(ex.contributions)
    per = c.mean(axis=(0, 2)) if c.ndim == 3 else c.mean(axis=0)
    order = np.argsort(-per, kind="stable")
    return {ex.features[i]: float(per[i]) for i in order}


def importance_plot(imp: dict[str, float], *, what: str, rows: int) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(imp)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(names) + 1.2))
    ax.barh(names, [imp[n] for n in names], color="#3b6ea5")
    ax.set_xlabel(f"mean |contribution| to the {what} ({rows} rows)")
    ax.set_title("Feature importances (explain.onnx on the export sample)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def build_explanations(pipeline: Any, schema: Schema, sample: pd.DataFrame, *, graph_name: str,
                       plot: bool = True) -> Explained:
    """explain.onnx for ``pipeline`` plus what the manifest and card say of it; checked on ``sample``.
    ``plot``: also draw report/importances.png (matplotlib)."""
    final = pipeline_steps(pipeline)[-1][1]
    try:
        family = explain_family(final)
        mean = _transformed_mean(pipeline, sample) if family == "linear" else None
        graph = to_explain_onnx(pipeline, schema, mean, graph_name=f"{graph_name}_explain")
    except Unexplained as exc:
        return Explained(info={"available": False, "reason": str(exc)})
    except (ExportError, ValueError, TypeError, KeyError) as exc:  # explanations are extra: the export goes on
        return Explained(info={"available": False, "reason": f"the explanation graph could not be built ({exc})"})
    set_metadata(graph.model, schema, extra={"skedge.explain": json.dumps(
        {"family": graph.family, "link": graph.link}, sort_keys=True)})
    data = graph.model.SerializeToString()
    try:
        explainer = Explainer(data, schema, source=Path(EXPLAIN_FILE), method=graph.method)
        ex = explainer.explain(rows_to_json(sample, schema))
    except SkedgeError as exc:
        return Explained(info={"available": False, "reason": f"onnxruntime cannot run the explanation graph ({exc})"})
    total = ex.bias + ex.contributions.sum(axis=1)
    sum_err = float(np.max(np.abs(total - ex.output))) if len(sample) else 0.0
    if not sum_err <= SUM_BOUND:  # by construction it holds: a miss is a skedge bug, said, not shipped
        return Explained(info={"available": False, "reason": f"the explanation graph's contributions miss the "
                               f"output by {sum_err:.3g} (bound {SUM_BOUND:g}): a skedge bug; report it"})
    out_diff = float(np.max(np.abs(ex.output - _reference_output(pipeline, sample, schema.task))))
    imp = importances(ex)
    what = "probability (mean over classes)" if schema.task == "classification" else "value"
    info = {"available": True, "file": EXPLAIN_FILE, "family": graph.family, "estimator": type(final).__name__,
            "method": graph.method, "link": graph.link, "space": "probability" if schema.task == "classification"
            else "value", "rows": len(sample), "importances": imp, "max_sum_error": sum_err,
            "output_max_abs_diff_vs_sklearn": out_diff}
    files = {EXPLAIN_FILE: data}
    if plot:
        files[IMPORTANCE_PLOT] = importance_plot(imp, what=what, rows=len(sample))
    return Explained(files=files, info=info)


def importances_markdown(info: dict[str, Any]) -> list[str]:
    """The card's "Importances" section (empty when the model is not explained: then one line says why)."""
    if not info:
        return []
    if not info.get("available"):
        return ["## Importances", "", f"Not explained: {info.get('reason', '')}.", ""]
    imp = info.get("importances") or {}
    out = ["## Importances", "",
           f"Mean absolute contribution over the {info.get('rows')} export-sample rows (the holdout when trained "
           f"by skedge), from `{info.get('file')}`: {info.get('method')}. `model.explain(rows)` gives them per row; "
           f"contributions plus the bias equal the output within {info.get('max_sum_error', 0):.1g}.", "",
           "| feature | mean abs contribution |", "|---|---|"]
    # largest first (the manifest's JSON keeps keys sorted by name)
    out += [f"| `{k}` | {v:.4g} |" for k, v in sorted(imp.items(), key=lambda kv: -kv[1])]
    out += ["", f"![importances]({IMPORTANCE_PLOT})", ""]
    return out
