"""The training config: TOML or YAML, validated before any work is done.

An unknown key (a typo) is an error naming the key and where it is; a bad value
names the allowed values or range. ``config_json_schema()`` gives editors the
same rules as JSON Schema (``skedge config-schema``).
"""

from __future__ import annotations

import hashlib
import json
import reprlib
from pathlib import Path
from typing import Any, Literal

import tomllib
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from skedge.runtime._errors import ConfigError

__all__ = ["Config", "DataConfig", "FeaturesConfig", "ModelConfig", "EvaluationConfig", "ExportConfig",
           "load_config", "config_json_schema"]


class _Strict(BaseModel):
    # inf/nan are never a sensible setting (a clip factor of inf, a tolerance of nan): refused like a typo
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DataConfig(_Strict):
    path: str = Field(description="data file (.csv or .parquet), relative to the config file")
    target: str | None = Field(None, description="the column to predict; omit for anomaly detection")
    drop: list[str] = Field(default_factory=list, description="columns that are not features (ids, leaks)")
    kinds: dict[str, Literal["number", "integer", "category", "boolean"]] = Field(
        default_factory=dict, description="override the inferred kind of a column")

    @model_validator(mode="after")
    def _target_is_no_feature(self) -> DataConfig:
        # dropping the target was silently ignored; giving it a kind would make it a feature of itself
        if self.target is not None and self.target in self.drop:
            raise ValueError(f"data.drop names the target {self.target!r}: drop lists columns that are not "
                             "features; the target is never one")
        if self.target is not None and self.target in self.kinds:
            raise ValueError(f"data.kinds names the target {self.target!r}: kinds are for features")
        return self


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
    high_cardinality: Literal["error", "drop", "keep"] = Field(
        "error", description="a string column with more than max_levels distinct values (an id, a date, free text): "
                             "'error' stops, 'drop' leaves it out with a warning, 'keep' one-hot encodes it anyway")
    max_levels: int = Field(100, ge=2, le=100_000,
                            description="distinct values above which a string column is high-cardinality")


class ModelConfig(_Strict):
    estimator: str = Field(description="a name from the estimator registry (skedge.trainer.estimators)")
    task: Literal["classification", "regression", "anomaly"] | None = Field(
        None, description="inferred from the target when omitted")
    params: dict[str, Any] = Field(default_factory=dict, description="estimator parameters")


# what `skedge promote`'s gate measures (skedge.registry.gate; a test holds the two together)
COMPARE_METRICS = frozenset({"accuracy", "balanced_accuracy", "r2", "mae", "rmse", "anomaly_rate_gap"})


class EvaluationConfig(_Strict):
    holdout: float = Field(0.2, gt=0.0, lt=0.9, description="fraction of rows held out for evaluation")
    stratify: bool = True
    gates: dict[str, float] = Field(
        default_factory=dict,
        description="metric -> bound: a minimum for scores (accuracy, roc_auc, r2, ...), a maximum for errors "
                    "(mae, rmse, mape, log_loss, brier, abs_error_p90, ...); <metric>_gain_over_baseline (or "
                    "_over_dummy, _over_linear) -> the least gain over the better baseline (or that one)")
    gate_on: Literal["value", "interval"] = Field(
        "value", description="what gates compare with their bound: the holdout value, or the worse end of its "
                             "95 % bootstrap interval (the lower end for scores and gains, the upper for errors)")
    bootstrap: int = Field(1000, ge=100, le=100_000, description="bootstrap resamples of the holdout (intervals)")
    slices: list[str] = Field(
        default_factory=list, description="feature columns to report the holdout by: categories by value, "
                                          "numbers by quantile bins of the training rows")
    slice_bins: int = Field(4, ge=2, le=20, description="quantile bins of a numeric slice column")
    slice_min_rows: int = Field(30, ge=1, description="slices with fewer holdout rows are reported, not gated")
    slice_gates: dict[str, float] = Field(
        default_factory=dict, description="metric -> bound, held by every slice of at least slice_min_rows rows")

    compare: dict[str, float] = Field(
        default_factory=dict,
        description="the gate against the previous version (skedge promote): metric -> largest drop allowed "
                    f"({', '.join(sorted(COMPARE_METRICS))}); carried in the manifest")

    @field_validator("gates")
    @classmethod
    def _gates_in_range(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_gates(v)

    @field_validator("slice_gates")
    @classmethod
    def _slice_gates_in_range(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_gates(v, gains=False)

    @model_validator(mode="after")
    def _slices_with_gates(self) -> EvaluationConfig:
        if self.slice_gates and not self.slices:
            raise ValueError("evaluation.slice_gates needs evaluation.slices: the columns to slice the holdout by")
        if len(set(self.slices)) != len(self.slices):
            raise ValueError(f"evaluation.slices names a column twice: {self.slices}")
        return self

    @field_validator("compare")
    @classmethod
    def _compare_rules(cls, v: dict[str, float]) -> dict[str, float]:
        for name, drop in v.items():
            if name not in COMPARE_METRICS:
                raise ValueError(f"unknown metric {name!r}; the gate against the previous version measures "
                                 f"{', '.join(sorted(COMPARE_METRICS))}")
            if not 0.0 <= drop < float("inf"):
                raise ValueError(f"{name} = {drop!r}: a drop is a finite number, 0 or more")
        return v


Target = Literal["onnx", "ort", "coreml"]
ALL_TARGETS: list[Target] = ["onnx", "ort", "coreml"]


def _check_gates(gates: dict[str, float], *, gains: bool = True) -> dict[str, float]:
    from .evaluate import METRIC_RANGES, gate_names

    allowed = gate_names(gains=gains)
    for name, bound in gates.items():
        if name not in allowed:
            raise ValueError(f"unknown metric {name!r}; gates take {', '.join(METRIC_RANGES)}"
                             + (", or <metric>_gain_over_baseline / _gain_over_dummy / _gain_over_linear"
                                if gains else ""))
        lo, hi = allowed[name]
        if not lo <= bound <= hi:
            raise ValueError(f"a gate on {name} must lie in [{lo}, {hi}], got {bound}")
    return gates


class ExportConfig(_Strict):
    targets: list[Target] = Field(default_factory=lambda: list(ALL_TARGETS))
    tolerance: float = Field(1e-5, gt=0.0, le=1e-2, description="parity bound (absolute, relative above 1)")
    golden: Literal["mixed", "holdout"] = Field(
        "mixed", description="golden rows shipped in the bundle: 'mixed' (no training record whole: each field "
                             "drawn from a different holdout row) or 'holdout' (real holdout rows)")

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


# What a config may be. A config is a few hundred bytes; these bounds only stop hostile or broken files
# early (a 397-byte YAML alias bomb expands to hundreds of MB when echoed or validated) and keep every
# message a person reads short.
MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_DEPTH = 32  # mappings and lists nested inside each other
MAX_CONFIG_NODES = 100_000  # scalars, lists and mappings, counting every alias as the copy it stands for
MAX_ERRORS_SHOWN = 10

# a bounded repr for values echoed in messages: never expands a deep or shared structure in full
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple, _REPR.maxset = 2, 4, 4, 4, 4
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 60, 60, 40


def _explain(exc: ValidationError, source: str) -> str:
    lines = []
    errors = exc.errors()
    for err in errors[:MAX_ERRORS_SHOWN]:
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc)[:120] or "(top level)"
        shown = _REPR.repr(err.get("input"))
        if err["type"] == "extra_forbidden":
            allowed = [f for f in _fields_of(loc) if f not in ("base_dir", "sha256")]
            lines.append(f"{source}: unknown key {_REPR.repr(str(loc[-1]))} at {where} (a typo?); allowed here: "
                         f"{', '.join(allowed)}")
        elif err["type"] == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            lines.append(f"{source}: {where} = {shown} is not allowed; expected {expected}")
        elif err["type"] == "missing":
            lines.append(f"{source}: {where} is required")
        else:
            lines.append(f"{source}: {where} = {shown}: {str(err['msg'])[:300]}")
    if len(errors) > MAX_ERRORS_SHOWN:
        lines.append(f"{source}: … and {len(errors) - MAX_ERRORS_SHOWN} more problems")
    return "\n".join(lines)


def _yaml_size(node: yaml.Node, memo: dict[int, int], depth: int, path: Path) -> int:
    """Nodes of the tree the YAML stands for, aliases expanded, without expanding them."""
    if depth > MAX_CONFIG_DEPTH:
        raise ConfigError(f"{path}: nested more than {MAX_CONFIG_DEPTH} levels deep; a config is a few flat tables")
    key = id(node)
    if key in memo:
        return memo[key]
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_yaml_size(k, memo, depth + 1, path) + _yaml_size(v, memo, depth + 1, path)
                       for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_yaml_size(v, memo, depth + 1, path) for v in node.value)
    else:
        size = 1
    if size > MAX_CONFIG_NODES:
        raise ConfigError(f"{path}: expands to more than {MAX_CONFIG_NODES:,} values (YAML aliases repeated "
                          "inside each other?); refused before expanding it")
    memo[key] = size
    return size


class _DepthLimitedLoader(yaml.SafeLoader):
    """SafeLoader whose composer stops at MAX_CONFIG_DEPTH instead of recursing until the stack runs out."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_CONFIG_DEPTH + 1:
                raise ConfigError(f"{self.name}: nested more than {MAX_CONFIG_DEPTH} levels deep; a config is a few "
                                  "flat tables")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _load_yaml(text: str, path: Path) -> Any:
    # compose first (aliases stay references to one node: linear in the text), measure the expanded
    # size, and only then build Python objects
    loader = _DepthLimitedLoader(text)
    loader.name = str(path)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _yaml_size(node, {}, 0, path)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_depth(data: Any, path: Path) -> None:
    """Iteratively, so a deep structure cannot exhaust the stack while it is being checked."""
    todo: list[tuple[Any, int]] = [(data, 0)]
    while todo:
        value, depth = todo.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(f"{path}: nested more than {MAX_CONFIG_DEPTH} levels deep; a config is a few flat "
                              "tables")
        if isinstance(value, dict):
            todo.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            todo.extend((v, depth + 1) for v in value)


def _parse(text: str, path: Path) -> dict[str, Any]:
    if path.suffix not in (".toml", ".yaml", ".yml"):
        raise ConfigError(f"{path}: unknown config format {_REPR.repr(path.suffix)}; use .toml or .yaml")
    kind = path.suffix[1:].upper().replace("YML", "YAML")
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else _load_yaml(text, path)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {kind}: {str(exc)[:300]}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to read; a config is a few flat tables") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    _check_depth(data, path)
    return data


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark (Windows editors write one) is not content
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save the config "
                          "as UTF-8") from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read and validate a config; raise ``ConfigError`` naming each problem."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{p}: {p.stat().st_size:,} bytes; a config is a few KB (at most "
                              f"{MAX_CONFIG_BYTES:,} bytes are read)")
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror}") from None
    data = _parse(_decode(raw, p), p)
    data.update(overrides or {})
    for reserved in ("base_dir", "sha256"):
        if reserved in data:
            raise ConfigError(f"{p}: unknown key '{reserved}' at {reserved}")
    try:
        cfg = Config(**data, base_dir=p.resolve().parent, sha256=hashlib.sha256(raw).hexdigest())
    except ValidationError as exc:
        raise ConfigError(_explain(exc, str(p))) from None
    except TypeError as exc:  # a key that is not a string (YAML allows `1: x`), passed as a keyword
        raise ConfigError(f"{p}: every key must be a name ({str(exc)[:200]})") from None
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
