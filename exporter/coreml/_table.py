"""The Core ML converter table: one entry per supported class, filled in here and nowhere else.

Users add their own classes with ``skedge.exporter.register_converter(cls,
coreml=...)``; that writes into ``COREML_CONVERTERS`` too, so there is one place
to look things up. A class missing here is not fatal for an export: the bundle
is written without ``model.mlmodel`` and the manifest says why.
"""

from __future__ import annotations

from typing import Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.decomposition import PCA, IncrementalPCA, TruncatedSVD
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import (
    AdaBoostClassifier,
    AdaBoostRegressor,
    BaggingClassifier,
    BaggingRegressor,
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
from sklearn.feature_selection import (
    RFE,
    RFECV,
    GenericUnivariateSelect,
    SelectFdr,
    SelectFpr,
    SelectFromModel,
    SelectFwe,
    SelectKBest,
    SelectPercentile,
    VarianceThreshold,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import (
    ARDRegression,
    BayesianRidge,
    ElasticNet,
    ElasticNetCV,
    HuberRegressor,
    Lars,
    Lasso,
    LassoCV,
    LassoLars,
    LinearRegression,
    LogisticRegression,
    QuantileRegressor,
    Ridge,
    RidgeCV,
    SGDClassifier,
    SGDRegressor,
    TheilSenRegressor,
)
from sklearn.naive_bayes import BernoulliNB, ComplementNB, GaussianNB, MultinomialNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import (
    Binarizer,
    FunctionTransformer,
    KBinsDiscretizer,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    PowerTransformer,
    QuantileTransformer,
    StandardScaler,
    TargetEncoder,
)
from sklearn.svm import SVC, SVR, LinearSVR, NuSVC, NuSVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

from . import linear, preprocessing, svm, trees
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
    # every other regressor whose predict is X @ coef_ + intercept_ (sklearn's LinearModel._decision_function)
    **{cls: linear.convert_linear_regressor for cls in (
        SGDRegressor, HuberRegressor, LinearSVR, BayesianRidge, ARDRegression, RidgeCV, LassoCV, ElasticNetCV,
        Lars, LassoLars, QuantileRegressor, TheilSenRegressor)},
    # linear classifiers whose probabilities are expit / softmax of their decision values, like LogisticRegression
    LinearDiscriminantAnalysis: linear.convert_lda,
    SGDClassifier: linear.convert_sgd_classifier,
    # a joint log-likelihood linear in X, and its softmax
    MultinomialNB: linear.convert_multinomial_nb,
    # linear projections: one GLMRegressor (and PCA's whitening, a Scaler)
    PCA: linear.convert_linear_projection,
    IncrementalPCA: linear.convert_linear_projection,
    TruncatedSVD: linear.convert_linear_projection,
    # feature selection keeps columns by index; a union puts its parts side by side
    **{cls: preprocessing.convert_selector for cls in (
        SelectKBest, SelectPercentile, VarianceThreshold, GenericUnivariateSelect, SelectFpr, SelectFdr, SelectFwe,
        SelectFromModel, RFE, RFECV)},
    FeatureUnion: preprocessing.convert_feature_union,
    # support vector regression: libsvm's kernels and decision value (svm.py)
    SVR: svm.convert_svr,
    NuSVR: svm.convert_svr,
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
_KNN = ("Core ML's KNearestNeighborsClassifier does not say which of several equally distant neighbours it keeps "
        "nor which label wins a tie of votes, and it has no regressor: it cannot be proven equal to sklearn's")
_SVC = ("Core ML's SupportVectorClassifier takes its label from libsvm's pairwise-coupled probabilities, while "
        "sklearn's SVC.predict votes on the decision values, and the format does not state the coupling")
REFUSED.update({
    Normalizer: "Core ML's Normalizer takes max(x_i) as the max norm (sklearn: max |x_i|) and leaves a zero norm "
                "undefined (sklearn keeps a zero row): it cannot be proven equal to sklearn's",
    KNeighborsClassifier: _KNN,
    KNeighborsRegressor: _KNN,
    SVC: _SVC,
    NuSVC: _SVC,
    CalibratedClassifierCV: "calibration (a sigmoid or an isotonic step over another model's scores) has no Core ML "
                            "model type that computes it in double",
    GaussianNB: "its log-likelihood is quadratic in the inputs: no Core ML model type computes it in double",
    BernoulliNB: "its inputs are binarized at a threshold first, which no Core ML model type does exactly",
    ComplementNB: "not implemented for Core ML yet (ONNX only)",
    KBinsDiscretizer: "binning at edges would be a tree per column: not implemented for Core ML yet (ONNX only)",
    BaggingClassifier: _META,
    BaggingRegressor: _META,
    AdaBoostClassifier: _META,
    AdaBoostRegressor: _META,
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
