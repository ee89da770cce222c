"""The Core ML converter table: one entry per supported class, filled in here and nowhere else.

Users add their own classes with ``skedge.exporter.register_converter(cls,
coreml=...)``; that writes into ``COREML_CONVERTERS`` too, so there is one place
to look things up. A class missing here is not fatal for an export: the bundle
is written without ``model.mlmodel`` and the manifest says why.
"""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    Binarizer,
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    PowerTransformer,
    QuantileTransformer,
    StandardScaler,
    TargetEncoder,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

from . import linear, preprocessing, trees
from ._context import Converter
from .clipper import convert_outlier_clipper

__all__ = ["COREML_CONVERTERS", "REFUSED", "lookup", "supported_names", "qualified_name"]

COREML_CONVERTERS: dict[type | str, Converter] = {
    # structure
    Pipeline: preprocessing.convert_pipeline_steps,
    ColumnTransformer: preprocessing.convert_column_transformer,
    # column-wise steps
    SimpleImputer: preprocessing.convert_simple_imputer,
    StandardScaler: preprocessing.convert_standard_scaler,
    MinMaxScaler: preprocessing.convert_minmax_scaler,
    OneHotEncoder: preprocessing.convert_one_hot,
    # the identity only: sklearn's fitted form of "passthrough"; any other function is refused
    FunctionTransformer: preprocessing.convert_function_transformer,
    # skedge's own outlier clipper (trainer feature layer), keyed by name: the exporter never imports the trainer
    "skedge.trainer.features.OutlierClipper": convert_outlier_clipper,
    # linear models
    LogisticRegression: linear.convert_logistic_regression,
    LinearRegression: linear.convert_linear_regressor,
    Ridge: linear.convert_linear_regressor,
    Lasso: linear.convert_linear_regressor,
    ElasticNet: linear.convert_linear_regressor,
    # trees
    DecisionTreeClassifier: trees.convert_tree_classifier,
    ExtraTreeClassifier: trees.convert_tree_classifier,
    DecisionTreeRegressor: trees.convert_tree_regressor,
    ExtraTreeRegressor: trees.convert_tree_regressor,
    RandomForestClassifier: trees.convert_forest_classifier,
    ExtraTreesClassifier: trees.convert_forest_classifier,
    RandomForestRegressor: trees.convert_forest_regressor,
    ExtraTreesRegressor: trees.convert_forest_regressor,
    GradientBoostingClassifier: trees.convert_gb_classifier,
    GradientBoostingRegressor: trees.convert_gb_regressor,
    HistGradientBoostingClassifier: trees.convert_hgb_classifier,
    HistGradientBoostingRegressor: trees.convert_hgb_regressor,
}

_MLP = ("not implemented: every layer would run in Core ML's float32 neural-network engine (float16 on the GPU "
        "or Neural Engine), so labels near a boundary could differ from sklearn's float64 network")

# Classes refused with a reason of their own rather than "not in the table".
REFUSED: dict[type, str] = {
    IsolationForest: "anomaly detection has no Core ML model type skedge can prove equal to sklearn's "
                     "decision_function (it needs 2^-x of the summed path lengths)",
    MLPClassifier: _MLP,
    MLPRegressor: _MLP,
}

# skedge's own ONNX converters (issue 12 point 2) that have no Core ML counterpart yet: the bundle keeps its
# ONNX model and the manifest says why there is no model.mlmodel
_FLOAT32_ONLY = ("not implemented for Core ML: its elementwise functions (log, exp, interpolation) exist only as "
                 "float32 neural-network layers, which cannot be proven equal to sklearn's float64 transform")
_META = ("not implemented for Core ML: averaging or stacking several models' outputs needs neural-network "
         "layers in float32 between Core ML models; the ONNX bundle carries it exactly")
REFUSED.update({
    CountVectorizer: "Core ML has no model type that tokenizes text by a regular expression",
    TfidfVectorizer: "Core ML has no model type that tokenizes text by a regular expression",
    Binarizer: "not implemented for Core ML yet (ONNX only)",
    TargetEncoder: "not implemented for Core ML yet (ONNX only)",
    PowerTransformer: _FLOAT32_ONLY,
    QuantileTransformer: _FLOAT32_ONLY,
    TransformedTargetRegressor: _META,
    VotingClassifier: _META,
    VotingRegressor: _META,
    StackingClassifier: _META,
    StackingRegressor: _META,
})


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def supported_names() -> list[str]:
    return sorted(k.split(".")[-1] if isinstance(k, str) else k.__name__ for k in COREML_CONVERTERS)


def lookup(step: Any) -> Converter | None:
    cls = type(step)
    return COREML_CONVERTERS.get(cls) or COREML_CONVERTERS.get(qualified_name(cls))
