"""CountVectorizer and TfidfVectorizer, the way sklearn's word analyzer counts (DESIGN.md "Coverage").

sklearn lowercases the document, takes every match of ``token_pattern`` as a token (so one-letter words are
not tokens at all, and a bigram joins the tokens on either side of one), forms the n-grams of consecutive
tokens and counts those in ``vocabulary_``. The graph does the same: StringNormalizer lowercases (locale
``C.UTF-8``, which exists on Linux, macOS and in onnxruntime-web), com.microsoft's Tokenizer takes the
matches of the pattern written for RE2 (Python's ``\\w`` is Unicode letters, numbers and ``_``; RE2's is
ASCII, so it is spelled out), TfIdfVectorizer counts the vocabulary's n-grams, and the tf-idf weighting
(``sublinear_tf``, ``idf_``, the l1/l2 norm) follows ``TfidfTransformer.transform`` in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._builder import DOUBLE, FLOAT, STRING, Graph, Var
from ._context import Context

__all__ = ["convert_count_vectorizer", "convert_tfidf_vectorizer", "convert_tfidf_transformer", "TOKEN_PATTERNS",
           "LOCALE"]

LOCALE = "C.UTF-8"
# sklearn's token patterns skedge translates -> the same matches in RE2
_WORD = r"[\p{L}\p{N}_]"
TOKEN_PATTERNS = {
    r"(?u)\b\w\w+\b": _WORD + "{2,}",
    r"(?u)\b\w+\b": _WORD + "+",
    r"\b\w\w+\b": _WORD + "{2,}",
    r"\b\w+\b": _WORD + "+",
}
# a token the patterns above can never produce: the Tokenizer pads short rows with it
_PAD = "#"


def _check(v: Any) -> str:
    if v.analyzer != "word":
        raise ValueError(f"analyzer={v.analyzer!r} is not supported; skedge translates the word analyzer")
    if v.tokenizer is not None or v.preprocessor is not None:
        raise ValueError("a custom tokenizer or preprocessor is Python code; it cannot be translated")
    if v.strip_accents is not None:
        raise ValueError(f"strip_accents={v.strip_accents!r} is not supported")
    if v.token_pattern not in TOKEN_PATTERNS:
        raise ValueError(f"token_pattern={v.token_pattern!r} is not one skedge translates "
                         f"({', '.join(map(repr, TOKEN_PATTERNS))})")
    lo, hi = v.ngram_range
    if v.stop_words is not None and hi > 1:
        # sklearn drops stop words before forming n-grams: a bigram can span one; the n-gram counter cannot
        raise ValueError("stop_words with n-grams longer than 1 are not supported")
    if v.dtype not in (np.float64, np.int64, float, int):
        raise ValueError(f"dtype={v.dtype!r} is not supported")
    return TOKEN_PATTERNS[v.token_pattern]


def _counts(g: Graph, v: Any, x: Var | list[Var], ctx: Context) -> Var:
    """[N, V] double: the count of each vocabulary n-gram per document (its column is vocabulary_'s)."""
    pattern = _check(v)
    cols = x if isinstance(x, list) else g.columns(x, "text_in")
    if len(cols) != 1 or cols[0].dtype != STRING:
        raise TypeError("it takes one text column (give the ColumnTransformer the column name, not a list)")
    doc = g.op1("Reshape", [cols[0].name, g.const(np.array([-1], dtype=np.int64), "flat")], "text_doc")
    if v.lowercase:
        doc = g.op1("StringNormalizer", [doc], "text_lower", case_change_action="LOWER", locale=LOCALE)
        g.note(f"text: lowercased by onnxruntime's StringNormalizer in locale {LOCALE}, which agrees with "
               "Python's str.lower() except for a few special cases (e.g. 'İ')")
    tokens = g.op1("Tokenizer", [doc], "text_tokens", domain="com.microsoft", mark=0, pad_value=_PAD,
                   tokenexp=pattern, mincharnum=1)
    lo, hi = v.ngram_range
    vocab = sorted(v.vocabulary_.items(), key=lambda kv: (len(kv[0].split(" ")), kv[1]))
    pool: list[str] = []
    counts: list[int] = []
    indexes: list[int] = []
    for n in range(1, hi + 1):
        counts.append(len(pool))  # ONNX: where the n-grams of length n start in pool_strings
        for term, col in vocab:
            words = term.split(" ")
            if len(words) == n:
                pool.extend(words)
                indexes.append(int(col))
    if not indexes:
        raise ValueError("the vocabulary is empty")
    tf = g.op1("TfIdfVectorizer", [tokens], "text_tf", mode="TF", min_gram_length=lo, max_gram_length=hi,
               max_skip_count=0, ngram_counts=counts, ngram_indexes=indexes, pool_strings=pool)
    width = len(v.vocabulary_)
    # float32 counts are exact integers; sklearn's are int64 (CountVectorizer) or float64 (tf-idf)
    out = g.cast(Var(tf, FLOAT, width), DOUBLE, "text_counts")
    if v.binary:
        out = Var(g.op1("Min", [out.name, g.const(np.float64(1.0), "one_d")], "text_binary"), DOUBLE, width)
    ctx.origin = None
    return out


def convert_count_vectorizer(g: Graph, v: Any, x: Var | list[Var], ctx: Context) -> Var:
    return _counts(g, v, x, ctx)


def convert_tfidf_vectorizer(g: Graph, v: Any, x: Var | list[Var], ctx: Context) -> Var:
    return _weigh(g, v, _counts(g, v, x, ctx))


def convert_tfidf_transformer(g: Graph, t: Any, x: Var | list[Var], ctx: Context) -> Var:
    """TfidfTransformer on counts (a CountVectorizer's, or any count matrix)."""
    m = g.matrix(x, "tfidf_in")
    if m.dtype == STRING:
        raise TypeError("it takes counts, and receives string columns")
    ctx.origin = None
    return _weigh(g, t, g.cast(m, DOUBLE, "tfidf_in_d"))


def _weigh(g: Graph, v: Any, tf: Var) -> Var:
    """TfidfTransformer.transform: sublinear tf, times idf_, then the row norm."""
    name = tf.name
    zero = g.const(np.float64(0.0), "zero_d")
    if v.sublinear_tf:  # np.log(X.data) + 1 on the stored (non-zero) entries only
        pos = g.op1("Greater", [name, zero], "tfidf_pos")
        safe = g.op1("Where", [pos, name, g.const(np.float64(1.0), "one_d")], "tfidf_safe")
        sub = g.op1("Add", [g.op1("Log", [safe], "tfidf_log"), g.const(np.float64(1.0), "one_d")], "tfidf_sub")
        name = g.op1("Where", [pos, sub, zero], "tfidf_tf")
    if v.use_idf:
        name = g.op1("Mul", [name, g.const(np.asarray(v.idf_, dtype=np.float64).reshape(1, -1), "tfidf_idf")],
                     "tfidf")
    if v.norm in ("l1", "l2"):
        axis = g.const(np.array([1], dtype=np.int64), "axis1")
        if v.norm == "l2":  # sqrt of the row's sum of squares; an all-zero row stays zero
            total = g.op1("Sqrt", [g.op1("ReduceSum", [g.op1("Mul", [name, name], "tfidf_sq"), axis], "tfidf_ss",
                                         keepdims=1)], "tfidf_norm")
        else:
            total = g.op1("ReduceSum", [g.op1("Abs", [name], "tfidf_abs"), axis], "tfidf_norm", keepdims=1)
        safe = g.op1("Where", [g.op1("Equal", [total, zero], "tfidf_empty"), g.const(np.float64(1.0), "one_d"),
                               total], "tfidf_div")
        name = g.op1("Div", [name, safe], "tfidf_normed")
    elif v.norm is not None:
        raise ValueError(f"norm={v.norm!r} is not supported")
    return Var(name, DOUBLE, tf.width)
