"""The model card: what a person reads before putting the model in an app."""

from __future__ import annotations

from typing import Any

from skedge.runtime._schema import Schema

from .card_evaluation import metrics_markdown, slices_markdown

__all__ = ["render_card"]


def _features_table(schema: Schema) -> list[str]:
    # the statistics are the export sample's when a user exported a pipeline of their own, not the training
    # data's: say which, so a range is not mistaken for what the model was trained on
    sources = sorted({str(f.stats.get("source", "training data")) for f in schema.features})
    where = " / ".join(sources)
    rows = next((f.stats["count"] for f in schema.features if "count" in f.stats), None)
    lines = [f"Ranges, categories and missing rates: of the {where}" + (f" ({rows} rows)." if rows else "."),
             "Nullable: the fitted pipeline answers a missing value there (asked of sklearn at export), or the "
             "exporter was told so.", "",
             f"| feature | kind | nullable | range / categories ({where}) | missing rate |", "|---|---|---|---|---|"]
    for f in schema.features:
        if f.kind == "category":
            rng = ", ".join(f.categories or ())
        elif "min" in f.stats:
            rng = f"{f.stats['min']:g} … {f.stats['max']:g} (mean {f.stats['mean']:.4g})"
        else:
            rng = "—"
        lines.append(f"| `{f.name}` | {f.kind} | {'yes' if f.nullable else 'no'} | {rng} | "
                     f"{f.stats.get('missing_rate', 0):.1%} |")
    return lines


def render_card(manifest: dict[str, Any], schema: Schema, parity_md: str, *, reports: list[str]) -> str:
    name, version = manifest["name"], manifest["version"]
    prov = manifest.get("provenance", {})
    out = [f"# Model card: {name} {version}", ""]
    out += ["## Intended use", "", manifest.get("description") or
            f"A {schema.task} model exported by skedge for on-device prediction. It answers for inputs like its "
            "training data; outside the ranges below its answers are extrapolations.", ""]
    out += ["## Outputs", ""]
    if schema.task == "classification":
        out.append(f"Label and one probability per class, in this order: {', '.join(map(str, schema.classes or ()))}.")
    elif schema.task == "regression":
        out.append("One value per row.")
    else:
        out.append("Label 1 (normal) or -1 (outlier), and a score (negative: outlier), as sklearn's "
                   "`predict` and `decision_function`.")
    out += ["", "## Inputs", ""] + _features_table(schema) + [""]
    out += ["## Data", ""]
    data = prov.get("data", {})
    if data:
        out.append(f"- source: `{data.get('path', 'a DataFrame')}`, sha256 `{str(data.get('sha256', ''))[:16]}…`")
        for k in ("rows", "rows_without_target", "train_rows", "holdout_rows"):
            if k in data:
                out.append(f"- {k.replace('_', ' ')}: {data[k]}")
    out.append(f"- estimator: {manifest.get('estimator', '')}")
    out.append(f"- seed: {prov.get('seed', '—')}")
    out.append("")
    # metrics beside both baselines with intervals, the gates, the slices (exporter/card_evaluation.py)
    out += metrics_markdown(manifest)
    out += slices_markdown(manifest)
    from .explain import importances_markdown  # global importances from explain.onnx (exporter/explain.py)

    out += importances_markdown(manifest.get("explain") or {})
    out += ["## Parity with scikit-learn", "", parity_md]
    for target, reason in (manifest.get("unavailable_targets") or {}).items():
        out.append(f"- {target}: not exported — {reason}")
    out.append("")
    if reports:
        out += ["## Plots", ""] + [f"![{r}]({r})" for r in reports] + [""]
    out += ["## Limits", "",
            "- Categories never seen in training are "
            + (("refused for " + ", ".join(strict)) if (strict := [k for k, v in schema.unknown_categories.items()
                                                                    if v == "error"]) else
               "ignored (all one-hot columns zero)")
            + "; the runtime counts them per field (`model.unseen_categories`).",
            "- Numbers outside the ranges above are accepted; trees answer as at the edge of the range, "
            "linear models extrapolate.",
            f"- Built with {', '.join(f'{k} {v}' for k, v in sorted((prov.get('libraries') or {}).items()))}.", ""]
    return "\n".join(out)
