"""The training config: TOML or YAML, validated before any work is done.

An unknown key (a typo) is an error naming the key and where it is; a bad value
names the allowed values or range. ``config_json_schema()`` gives editors the
same rules as JSON Schema (``skedge config-schema``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import tomllib
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from skedge.runtime._errors import ConfigError

__all__ = ["Config", "DataConfig", "FeaturesConfig", "ModelConfig", "EvaluationConfig", "ExportConfig",
           "load_config", "config_json_schema"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    path: str = Field(description="data file (.csv or .parquet), relative to the config file")
    target: str | None = Field(None, description="the column to predict; omit for anomaly detection")
    drop: list[str] = Field(default_factory=list, description="columns that are not features (ids, leaks)")
    kinds: dict[str, Literal["number", "integer", "category", "boolean"]] = Field(
        default_factory=dict, description="override the inferred kind of a column")


class ClipConfig(_Strict):
    method: Literal["quantile", "iqr"] = "quantile"
    lower: float = Field(0.005, ge=0.0, le=0.5, description="quantile method: lower quantile")
    upper: float = Field(0.995, ge=0.5, le=1.0, description="quantile method: upper quantile")
    factor: float = Field(3.0, gt=0.0, description="iqr method: fences at Q1 - f*IQR and Q3 + f*IQR")


class FeaturesConfig(_Strict):
    numeric_impute: Literal["median", "mean"] = "median"
    categorical_missing: Literal["category", "most_frequent"] = Field(
        "category", description="'category': missing is a category of its own; 'most_frequent': impute")
    scale: Literal["auto", "always", "never"] = Field(
        "auto", description="auto: scale for linear models and networks, never in front of trees")
    clip_outliers: ClipConfig | None = Field(None, description="clip numeric features to training bounds")
    unknown_categories: Literal["ignore", "error"] = "ignore"


class ModelConfig(_Strict):
    estimator: str = Field(description="a name from the estimator registry (skedge.trainer.estimators)")
    task: Literal["classification", "regression", "anomaly"] | None = Field(
        None, description="inferred from the target when omitted")
    params: dict[str, Any] = Field(default_factory=dict, description="estimator parameters")


class EvaluationConfig(_Strict):
    holdout: float = Field(0.2, gt=0.0, lt=0.9, description="fraction of rows held out for evaluation")
    stratify: bool = True
    gates: dict[str, float] = Field(
        default_factory=dict,
        description="metric -> bound: a minimum for scores (accuracy, r2, ...), a maximum for errors "
                    "(mae, rmse, log_loss)")

    @field_validator("gates")
    @classmethod
    def _gates_in_range(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_gates(v)


Target = Literal["onnx", "ort", "coreml"]
ALL_TARGETS: list[Target] = ["onnx", "ort", "coreml"]


def _check_gates(gates: dict[str, float]) -> dict[str, float]:
    from .evaluate import METRIC_RANGES

    for name, bound in gates.items():
        if name not in METRIC_RANGES:
            raise ValueError(f"unknown metric {name!r}; gates take {', '.join(METRIC_RANGES)}")
        lo, hi = METRIC_RANGES[name]
        if not lo <= bound <= hi:
            raise ValueError(f"a gate on {name} must lie in [{lo}, {hi}], got {bound}")
    return gates


class ExportConfig(_Strict):
    targets: list[Target] = Field(default_factory=lambda: list(ALL_TARGETS))
    tolerance: float = Field(1e-5, gt=0.0, le=1e-2, description="parity bound (absolute, relative above 1)")

    @field_validator("targets")
    @classmethod
    def _onnx_first(cls, v: list[Target]) -> list[Target]:
        if "onnx" not in v:
            raise ValueError("'onnx' must be among the targets: every bundle holds model.onnx")
        return v


class Config(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    version: str = Field("1.0.0", pattern=r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$")
    description: str | None = None
    seed: int = Field(0, ge=0, le=2**32 - 1)
    data: DataConfig
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    model: ModelConfig
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    # set by load_config: where relative paths start, and the config's own hash
    base_dir: Path = Field(Path("."), exclude=True)
    sha256: str = Field("", exclude=True)

    def data_path(self) -> Path:
        p = Path(self.data.path)
        return p if p.is_absolute() else self.base_dir / p


def _fields_of(loc: tuple[Any, ...]) -> list[str]:
    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        candidates = [ann] + list(getattr(ann, "__args__", ()))
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return sorted(getattr(model, "model_fields", {}))


def _explain(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = [f for f in _fields_of(loc) if f not in ("base_dir", "sha256")]
            lines.append(f"{source}: unknown key '{loc[-1]}' at {where} (a typo?); allowed here: {', '.join(allowed)}")
        elif err["type"] == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            lines.append(f"{source}: {where} = {err.get('input')!r} is not allowed; expected {expected}")
        elif err["type"] == "missing":
            lines.append(f"{source}: {where} is required")
        else:
            lines.append(f"{source}: {where} = {err.get('input')!r}: {err['msg']}")
    return "\n".join(lines)


def _parse(text: str, path: Path) -> dict[str, Any]:
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: expected a mapping at the top level")
            return data
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    raise ConfigError(f"{path}: unknown config format {path.suffix!r}; use .toml or .yaml")


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read and validate a config; raise ``ConfigError`` naming each problem."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror}") from None
    data = _parse(raw.decode("utf-8"), p)
    data.update(overrides or {})
    for reserved in ("base_dir", "sha256"):
        if reserved in data:
            raise ConfigError(f"{p}: unknown key '{reserved}' at {reserved}")
    try:
        cfg = Config(**data, base_dir=p.resolve().parent, sha256=hashlib.sha256(raw).hexdigest())
    except ValidationError as exc:
        raise ConfigError(_explain(exc, str(p))) from None
    from .estimators import check_model_config

    check_model_config(cfg, str(p))
    return cfg


def config_json_schema() -> dict[str, Any]:
    schema = Config.model_json_schema()
    schema["properties"].pop("base_dir", None)
    schema["properties"].pop("sha256", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "skedge training config"
    return json.loads(json.dumps(schema))
