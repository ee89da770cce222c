"""The ONNX converter table: one entry per supported class, filled in here and nowhere else.

Users add their own classes with ``skedge.exporter.register_converter``; that
writes into ``ONNX_CONVERTERS`` too, so there is one place to look things up.
"""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import (
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
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    Binarizer,
    FunctionTransformer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
    TargetEncoder,
)
from sklearn.svm import SVR, NuSVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

from .._steps import public_name
from . import field, folding, hgb_categorical, knn_distance, linear, meta, preprocessing, svm, text, transforms, trees
from ._context import Converter
from .clipper import convert_outlier_clipper
from .lgbm import convert_lgbm_classifier, convert_lgbm_regressor
from .normalizer import convert_normalizer

__all__ = ["ONNX_CONVERTERS", "REFUSED", "FIELD", "lookup", "who_converts", "supported_names", "qualified_name",
           "public_name"]

_TEXT = ("skl2onnx's tokenizer forms bigrams across the one-letter tokens sklearn drops and misses accented words, "
         "and skedge has no converter of its own for it yet")

ONNX_CONVERTERS: dict[type | str, Converter] = {
    # structure
    Pipeline: preprocessing.convert_pipeline_steps,
    # identity (a fitted ColumnTransformer's "passthrough") and numpy ufuncs; arbitrary code is refused
    FunctionTransformer: transforms.convert_function_transformer,
    ColumnTransformer: preprocessing.convert_column_transformer,
    # column-wise steps
    SimpleImputer: transforms.convert_simple_imputer_with_indicator,
    StandardScaler: preprocessing.convert_standard_scaler,
    MinMaxScaler: preprocessing.convert_minmax_scaler,
    RobustScaler: preprocessing.convert_robust_scaler,
    MaxAbsScaler: preprocessing.convert_maxabs_scaler,
    OneHotEncoder: preprocessing.convert_one_hot,
    # skl2onnx's turns a zero row into NaN (normalizer.py)
    Normalizer: convert_normalizer,
    # LightGBM compares float64 with float64 thresholds; onnxmltools' trees compare in float32 (lgbm.py). Keyed by
    # name: the exporter never imports lightgbm
    "lightgbm.sklearn.LGBMClassifier": convert_lgbm_classifier,
    "lightgbm.sklearn.LGBMRegressor": convert_lgbm_regressor,
    OrdinalEncoder: preprocessing.convert_ordinal,
    # skedge's own exact converters where skl2onnx is wrong or refuses (issue 12 point 2; transforms.py)
    Binarizer: transforms.convert_binarizer,
    KBinsDiscretizer: transforms.convert_kbins_discretizer,
    PowerTransformer: transforms.convert_power_transformer,
    QuantileTransformer: transforms.convert_quantile_transformer,
    TargetEncoder: transforms.convert_target_encoder,
    # meta-estimators: their parts go through this table, the meta adds sklearn's arithmetic (meta.py)
    TransformedTargetRegressor: meta.convert_transformed_target_regressor,
    VotingClassifier: meta.convert_voting_classifier,
    VotingRegressor: meta.convert_voting_regressor,
    StackingClassifier: meta.convert_stacking_classifier,
    StackingRegressor: meta.convert_stacking_regressor,
    MultiOutputRegressor: meta.convert_multioutput_regressor,
    # skl2onnx's compares its trees in float32 against float32 thresholds (0.4 off on threshold rows)
    BaggingClassifier: meta.convert_bagging_classifier,
    BaggingRegressor: meta.convert_bagging_regressor,
    # the word analyzer, token for token (text.py)
    CountVectorizer: text.convert_count_vectorizer,
    TfidfVectorizer: text.convert_tfidf_vectorizer,
    TfidfTransformer: text.convert_tfidf_transformer,
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
    # uniform weights go on to neighbors.py; weights="distance" is knn_distance.py's
    KNeighborsClassifier: knn_distance.convert_knn_classifier,
    KNeighborsRegressor: knn_distance.convert_knn_regressor,
    # support vector regression in double (onnxruntime's SVMRegressor is float32 only: 4.5e-4 off; svm.py)
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
    # numerical-only models go on to trees.py; native categorical splits are hgb_categorical.py's
    HistGradientBoostingClassifier: hgb_categorical.convert_hgb_classifier_categorical,
    HistGradientBoostingRegressor: hgb_categorical.convert_hgb_regressor_categorical,
    IsolationForest: trees.convert_isolation_forest,
}
# a tree right after a log/exp-based transform reads it through its splits, folded into the transform's
# input (folding.py): the same entries, wrapped, so the table still says who converts each class
for _tree_cls in (DecisionTreeClassifier, ExtraTreeClassifier, DecisionTreeRegressor, ExtraTreeRegressor,
                  RandomForestClassifier, ExtraTreesClassifier, RandomForestRegressor, ExtraTreesRegressor,
                  GradientBoostingClassifier, GradientBoostingRegressor, HistGradientBoostingClassifier,
                  HistGradientBoostingRegressor, IsolationForest):
    ONNX_CONVERTERS[_tree_cls] = folding.folded(ONNX_CONVERTERS[_tree_cls])

# Classes refused with a reason of their own rather than "not in the table": where the field's converter is
# measured to answer differently from sklearn without a word (DESIGN.md "Coverage"). Keyed by public path, so
# nothing is imported for it; an entry in ONNX_CONVERTERS (skedge's own converter) wins over a refusal here.
REFUSED: dict[type | str, str] = {
    "sklearn.preprocessing.Binarizer": "skl2onnx's converter maps x == threshold to 1 where sklearn gives 0, and "
                                       "skedge has no converter of its own for it yet",
    "sklearn.feature_extraction.text.CountVectorizer": _TEXT,
    "sklearn.feature_extraction.text.TfidfVectorizer": _TEXT,
    "sklearn.feature_extraction.text.TfidfTransformer": "skl2onnx's sublinear_tf weights differ from sklearn's, "
                                                        "and skedge has no converter of its own for it yet",
    "sklearn.preprocessing.TargetEncoder": "skl2onnx's converter was measured one float64 step off a following "
                                           "tree's threshold, and skedge has no converter of its own for it yet",
}

# Every other class skedge converts through the field's converters (exporter/onnx/field.py), one step at a
# time, inside skedge's graph, then proven like any other step. Written out, not discovered from skl2onnx's
# registry at import: this table says who converts what, and skl2onnx is imported only when such a step is
# exported. Keyed by the public import path.
FIELD: dict[str, str] = {
    "skl2onnx.sklapi.cast_transformer.CastTransformer": "skl2onnx",
    "sklearn.calibration.CalibratedClassifierCV": "skl2onnx",
    "sklearn.cluster.KMeans": "skl2onnx",
    "sklearn.cluster.MiniBatchKMeans": "skl2onnx",
    "sklearn.cross_decomposition.PLSRegression": "skl2onnx",
    "sklearn.decomposition.IncrementalPCA": "skl2onnx",
    "sklearn.decomposition.KernelPCA": "skl2onnx",
    "sklearn.decomposition.PCA": "skl2onnx",
    "sklearn.decomposition.TruncatedSVD": "skl2onnx",
    "sklearn.discriminant_analysis.LinearDiscriminantAnalysis": "skl2onnx",
    "sklearn.discriminant_analysis.QuadraticDiscriminantAnalysis": "skl2onnx",
    "sklearn.ensemble.AdaBoostClassifier": "skl2onnx",
    "sklearn.ensemble.AdaBoostRegressor": "skl2onnx",
    "sklearn.ensemble.RandomTreesEmbedding": "skl2onnx",
    "sklearn.ensemble.StackingClassifier": "skl2onnx",
    "sklearn.ensemble.StackingRegressor": "skl2onnx",
    "sklearn.ensemble.VotingClassifier": "skl2onnx",
    "sklearn.ensemble.VotingRegressor": "skl2onnx",
    "sklearn.feature_extraction.DictVectorizer": "skl2onnx",
    "sklearn.feature_extraction.FeatureHasher": "skl2onnx",
    "sklearn.feature_extraction.text.CountVectorizer": "skl2onnx",
    "sklearn.feature_extraction.text.TfidfTransformer": "skl2onnx",
    "sklearn.feature_extraction.text.TfidfVectorizer": "skl2onnx",
    "sklearn.feature_selection.GenericUnivariateSelect": "skl2onnx",
    "sklearn.feature_selection.RFE": "skl2onnx",
    "sklearn.feature_selection.RFECV": "skl2onnx",
    "sklearn.feature_selection.SelectFdr": "skl2onnx",
    "sklearn.feature_selection.SelectFpr": "skl2onnx",
    "sklearn.feature_selection.SelectFromModel": "skl2onnx",
    "sklearn.feature_selection.SelectFwe": "skl2onnx",
    "sklearn.feature_selection.SelectKBest": "skl2onnx",
    "sklearn.feature_selection.SelectPercentile": "skl2onnx",
    "sklearn.feature_selection.VarianceThreshold": "skl2onnx",
    "sklearn.gaussian_process.GaussianProcessClassifier": "skl2onnx",
    "sklearn.gaussian_process.GaussianProcessRegressor": "skl2onnx",
    "sklearn.impute.KNNImputer": "skl2onnx",
    "sklearn.linear_model.ARDRegression": "skl2onnx",
    "sklearn.linear_model.BayesianRidge": "skl2onnx",
    "sklearn.linear_model.ElasticNetCV": "skl2onnx",
    "sklearn.linear_model.GammaRegressor": "skl2onnx",
    "sklearn.linear_model.HuberRegressor": "skl2onnx",
    "sklearn.linear_model.Lars": "skl2onnx",
    "sklearn.linear_model.LarsCV": "skl2onnx",
    "sklearn.linear_model.LassoCV": "skl2onnx",
    "sklearn.linear_model.LassoLars": "skl2onnx",
    "sklearn.linear_model.LassoLarsCV": "skl2onnx",
    "sklearn.linear_model.LassoLarsIC": "skl2onnx",
    "sklearn.linear_model.LogisticRegressionCV": "skl2onnx",
    "sklearn.linear_model.MultiTaskElasticNet": "skl2onnx",
    "sklearn.linear_model.MultiTaskElasticNetCV": "skl2onnx",
    "sklearn.linear_model.MultiTaskLasso": "skl2onnx",
    "sklearn.linear_model.MultiTaskLassoCV": "skl2onnx",
    "sklearn.linear_model.OrthogonalMatchingPursuit": "skl2onnx",
    "sklearn.linear_model.OrthogonalMatchingPursuitCV": "skl2onnx",
    "sklearn.linear_model.PassiveAggressiveClassifier": "skl2onnx",
    "sklearn.linear_model.PassiveAggressiveRegressor": "skl2onnx",
    "sklearn.linear_model.Perceptron": "skl2onnx",
    "sklearn.linear_model.PoissonRegressor": "skl2onnx",
    "sklearn.linear_model.QuantileRegressor": "skl2onnx",
    "sklearn.linear_model.RANSACRegressor": "skl2onnx",
    "sklearn.linear_model.RidgeCV": "skl2onnx",
    "sklearn.linear_model.RidgeClassifier": "skl2onnx",
    "sklearn.linear_model.RidgeClassifierCV": "skl2onnx",
    "sklearn.linear_model.SGDClassifier": "skl2onnx",
    "sklearn.linear_model.SGDOneClassSVM": "skl2onnx",
    "sklearn.linear_model.SGDRegressor": "skl2onnx",
    "sklearn.linear_model.TheilSenRegressor": "skl2onnx",
    "sklearn.linear_model.TweedieRegressor": "skl2onnx",
    "sklearn.mixture.BayesianGaussianMixture": "skl2onnx",
    "sklearn.mixture.GaussianMixture": "skl2onnx",
    "sklearn.model_selection.GridSearchCV": "skl2onnx",
    "sklearn.model_selection.TunedThresholdClassifierCV": "skl2onnx",
    "sklearn.multiclass.OneVsOneClassifier": "skl2onnx",
    "sklearn.multiclass.OneVsRestClassifier": "skl2onnx",
    "sklearn.multioutput.MultiOutputClassifier": "skl2onnx",
    "sklearn.multioutput.MultiOutputRegressor": "skl2onnx",
    "sklearn.naive_bayes.BernoulliNB": "skl2onnx",
    "sklearn.naive_bayes.CategoricalNB": "skl2onnx",
    "sklearn.naive_bayes.ComplementNB": "skl2onnx",
    "sklearn.naive_bayes.GaussianNB": "skl2onnx",
    "sklearn.naive_bayes.MultinomialNB": "skl2onnx",
    "sklearn.neighbors.KNeighborsTransformer": "skl2onnx",
    "sklearn.neighbors.LocalOutlierFactor": "skl2onnx",
    "sklearn.neighbors.NearestNeighbors": "skl2onnx",
    "sklearn.neighbors.NeighborhoodComponentsAnalysis": "skl2onnx",
    "sklearn.neighbors.RadiusNeighborsClassifier": "skl2onnx",
    "sklearn.neighbors.RadiusNeighborsRegressor": "skl2onnx",
    "sklearn.pipeline.FeatureUnion": "skl2onnx",
    "sklearn.preprocessing.Binarizer": "skl2onnx",
    "sklearn.preprocessing.Normalizer": "skl2onnx",
    "sklearn.preprocessing.PolynomialFeatures": "skl2onnx",
    "sklearn.preprocessing.PowerTransformer": "skl2onnx",
    "sklearn.preprocessing.QuantileTransformer": "skl2onnx",
    "sklearn.preprocessing.TargetEncoder": "skl2onnx",
    "sklearn.random_projection.GaussianRandomProjection": "skl2onnx",
    "sklearn.svm.LinearSVC": "skl2onnx",
    "sklearn.svm.LinearSVR": "skl2onnx",
    "sklearn.svm.NuSVC": "skl2onnx",
    "sklearn.svm.OneClassSVM": "skl2onnx",
    "sklearn.svm.SVC": "skl2onnx",
    # XGBoost (the xgboost extra), through onnxmltools in float32, as XGBoost itself compares; LightGBM has
    # skedge's own converter (lgbm.py)
    "xgboost.XGBClassifier": "onnxmltools",
    "xgboost.XGBRegressor": "onnxmltools",
}

_FIELD_CONVERTERS: dict[str, Converter] = {
    "skl2onnx": field.convert_with_skl2onnx,
    "onnxmltools": field.convert_with_onnxmltools,
}


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _keys(cls: type) -> list[type | str]:
    top = cls.__module__.split(".")[0]
    return [cls, qualified_name(cls), public_name(cls), f"{top}.{cls.__qualname__}"]


def who_converts(cls: type) -> tuple[str, str]:
    """(who, note) for a class: "skedge", "skl2onnx", "onnxmltools", or "refused" with the reason."""
    keys = _keys(cls)
    if any(k in ONNX_CONVERTERS for k in keys):
        return "skedge", ""
    for k in keys:
        if k in REFUSED:
            return "refused", REFUSED[k]
    for k in keys:
        if isinstance(k, str) and k in FIELD:
            return FIELD[k], ""
    return "refused", "no converter in skedge or in the field's converters skedge uses"


def supported_names() -> list[str]:
    own = {k.split(".")[-1] if isinstance(k, str) else k.__name__ for k in ONNX_CONVERTERS}
    return sorted(own | {k.split(".")[-1] for k in FIELD if k not in REFUSED})


def lookup(step: Any) -> Converter | None:
    """skedge's own converter first; then, unless refused, the field's converter the table names."""
    for k in _keys(type(step)):
        if k in ONNX_CONVERTERS:
            return ONNX_CONVERTERS[k]
    who, _ = who_converts(type(step))
    return _FIELD_CONVERTERS.get(who)


def field_steps(pipeline: Any) -> list[str]:
    """The steps of ``pipeline`` the field's converters convert, as a message names them: what a parity failure
    points at ("step 'bag' (BaggingClassifier, skl2onnx 1.20.0)")."""
    from .._steps import pipeline_steps

    found: list[str] = []

    def walk(name: str, step: Any) -> None:
        if step is None or isinstance(step, str):
            return
        for k in _keys(type(step)):
            if k in ONNX_CONVERTERS:
                if hasattr(step, "steps"):
                    for n, s in step.steps:
                        walk(n, s)
                for n, s, *_ in getattr(step, "transformers_", []):
                    walk(n, s)
                return
        who, _ = who_converts(type(step))
        if who in _FIELD_CONVERTERS:
            found.append(f"step {name!r} ({type(step).__name__}, {who} {field.field_version(who) or ''})".replace(
                " )", ")"))

    for n, s in pipeline_steps(pipeline):
        walk(n, s)
    return found
