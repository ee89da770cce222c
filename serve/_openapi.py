"""The OpenAPI pieces generated from a model's schema: what ``/docs`` shows is the model's real form.

The routes read the raw body themselves (the hot path must not pay for a pydantic model per request, and
the runtime is the one authority on what a row may hold), so their request and response documents are
written here from the ``Schema`` and given to FastAPI as ``openapi_extra``.
"""

from __future__ import annotations

from typing import Any

from skedge.runtime import Schema

__all__ = ["row_schema", "request_body", "predict_responses", "explain_responses", "ERROR_SCHEMA"]

_JSON_TYPES = {"number": "number", "integer": "integer", "boolean": "boolean", "category": "string"}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "one line: the row, the field, what was expected, what came"},
        "reason": {"type": "string", "description": "the reject reason counted in /metrics"},
        "row": {"type": ["integer", "null"]},
        "field": {"type": ["string", "null"]},
    },
    "required": ["detail", "reason"],
}


def _feature(f: Any, unknown: str | None) -> dict[str, Any]:
    t = _JSON_TYPES[f.kind]
    prop: dict[str, Any] = {"type": [t, "null"] if f.nullable else t}
    notes = [f"{f.kind} feature" + (", nullable: null means missing" if f.nullable else ", required")]
    if f.categories is not None:
        prop["enum"] = [*f.categories, *([None] if f.nullable else [])]
        if unknown == "ignore":
            # the enum lists what training saw; the model still answers another value (as none of these)
            notes.append("other values are accepted and counted as unseen")
    stats = f.stats or {}
    if f.kind in ("number", "integer") and "min" in stats and "max" in stats:
        notes.append(f"training range {stats['min']} to {stats['max']}")
    prop["description"] = "; ".join(notes)
    return prop


def row_schema(schema: Schema, example: dict[str, Any] | None = None) -> dict[str, Any]:
    """One record: every feature, with its JSON type, nullability and known categories."""
    out: dict[str, Any] = {
        "type": "object",
        "title": "Row",
        "properties": {f.name: _feature(f, schema.unknown_categories.get(f.name)) for f in schema.features},
        "required": list(schema.names),
        "additionalProperties": False,
    }
    if example is not None:
        out["example"] = example
    return out


def request_body(schema: Schema, example: dict[str, Any] | None = None) -> dict[str, Any]:
    row = {"$ref": "#/components/schemas/Row"}
    rows = {"type": "array", "items": row}
    body = {"oneOf": [{"type": "object", "properties": {"rows": rows}, "required": ["rows"],
                       "additionalProperties": False}, rows]}
    content: dict[str, Any] = {"schema": body}
    if example is not None:
        content["example"] = {"rows": [example]}
    return {"required": True, "description": '{"rows": [record, ...]} or a bare list of records',
            "content": {"application/json": content}}


def _model_info() -> dict[str, Any]:
    return {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": ["string", "null"]},
                                              "release": {"type": ["integer", "null"]}}}


def _errors() -> dict[str, Any]:
    err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "401": {"description": "no or wrong API key", **err},
        "413": {"description": "the body is larger than --max-body", **err},
        "422": {"description": "the body is not JSON, not rows, or a row does not fit the schema", **err},
    }


def predict_responses(schema: Schema) -> dict[str, Any]:
    if schema.task == "regression":
        pred: dict[str, Any] = {"type": "number"}
    elif schema.classes is not None:
        pred = {"enum": list(schema.classes)}
    else:
        pred = {}
    props: dict[str, Any] = {"predictions": {"type": "array", "items": pred}, "model": _model_info()}
    if schema.task == "classification" and "probabilities" in schema.outputs:
        k = len(schema.classes or ())
        props["probabilities"] = {
            "type": "array",
            "description": f"per row, one probability per class, in the order {list(schema.classes or ())}",
            "items": {"type": "array", "items": {"type": "number"}, "minItems": k, "maxItems": k}}
    if "score" in schema.outputs:
        props["scores"] = {"type": "array", "items": {"type": "number"},
                           "description": "decision_function: negative means outlier"}
    ok = {"description": "one prediction per row, in order",
          "content": {"application/json": {"schema": {"type": "object", "properties": props}}}}
    return {"200": ok, **_errors()}


def explain_responses(schema: Schema) -> dict[str, Any]:
    props = {"features": {"type": "array", "items": {"type": "string"}},
             "contributions": {"type": "array", "description": "rows x features (x classes for a classifier)"},
             "bias": {}, "output": {"type": "array"}, "model": _model_info()}
    ok = {"description": "bias + contributions summed over features = output, per row",
          "content": {"application/json": {"schema": {"type": "object", "properties": props}}}}
    return {"200": ok, **_errors()}
