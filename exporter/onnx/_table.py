"""The ONNX converter table: one entry per supported class, filled in here and nowhere else.

Users add their own classes with ``skedge.exporter.register_converter``; that
writes into ``ONNX_CONVERTERS`` too, so there is one place to look things up.
"""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
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
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

from . import linear, neighbors, preprocessing, trees
from ._context import Converter
from .clipper import convert_outlier_clipper

__all__ = ["ONNX_CONVERTERS", "REFUSED", "lookup", "supported_names", "qualified_name"]

ONNX_CONVERTERS: dict[type | str, Converter] = {
    # structure
    Pipeline: preprocessing.convert_pipeline_steps,
    # identity only (what a fitted ColumnTransformer stores for "passthrough"); arbitrary code is refused
    FunctionTransformer: preprocessing.convert_function_transformer,
    ColumnTransformer: preprocessing.convert_column_transformer,
    # column-wise steps
    SimpleImputer: preprocessing.convert_simple_imputer,
    StandardScaler: preprocessing.convert_standard_scaler,
    MinMaxScaler: preprocessing.convert_minmax_scaler,
    RobustScaler: preprocessing.convert_robust_scaler,
    MaxAbsScaler: preprocessing.convert_maxabs_scaler,
    OneHotEncoder: preprocessing.convert_one_hot,
    OrdinalEncoder: preprocessing.convert_ordinal,
    # skedge's own outlier clipper (trainer feature layer), keyed by name: the exporter never imports the trainer
    "skedge.trainer.features.OutlierClipper": convert_outlier_clipper,
    # linear models and networks
    LogisticRegression: linear.convert_logistic_regression,
    LinearRegression: linear.convert_linear_regressor,
    Ridge: linear.convert_linear_regressor,
    Lasso: linear.convert_linear_regressor,
    ElasticNet: linear.convert_linear_regressor,
    MLPClassifier: linear.convert_mlp_classifier,
    MLPRegressor: linear.convert_mlp_regressor,
    KNeighborsClassifier: neighbors.convert_knn_classifier,
    KNeighborsRegressor: neighbors.convert_knn_regressor,
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
    IsolationForest: trees.convert_isolation_forest,
}

# Classes refused with a reason of their own rather than "not in the table".
REFUSED: dict[type, str] = {}


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def supported_names() -> list[str]:
    return sorted(k.split(".")[-1] if isinstance(k, str) else k.__name__ for k in ONNX_CONVERTERS)


def lookup(step: Any) -> Converter | None:
    cls = type(step)
    return ONNX_CONVERTERS.get(cls) or ONNX_CONVERTERS.get(qualified_name(cls))
