"""Hostile and broken configs: each refused with one bounded ConfigError, before any data is read.

Alias bombs, deep nesting, bytes that are not UTF-8, oversized files, whole numbers past C int range,
inf/nan, and a network that cannot fit in memory.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skedge.runtime import ConfigError
from skedge.trainer import config_json_schema, load_config
from skedge.trainer import estimators as est_mod
from skedge.trainer.config import MAX_CONFIG_DEPTH

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PENGUINS = EXAMPLES / "penguins.csv"
HEAD = f'name = "t"\n[data]\npath = "{PENGUINS}"\ntarget = "species"\n'
YAML_HEAD = f"name: t\ndata: {{path: {PENGUINS}, target: species}}\nmodel: {{estimator: decision_tree}}\n"


def _write(tmp_path: Path, text: str | bytes, suffix: str = ".toml") -> Path:
    p = tmp_path / f"c{suffix}"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The billion-laughs shape: each anchor a list of `width` copies of the one before (width**levels leaves)."""
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("head", ["", YAML_HEAD], ids=["bare", "inside-a-config"])
def test_yaml_alias_bomb_is_refused_before_expansion(tmp_path: Path, head: str) -> None:
    text = head + _alias_bomb()
    assert len(text.encode()) < 600  # a few hundred bytes that stand for 9**9 = 387 million strings
    p = _write(tmp_path, text, ".yaml")
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ConfigError) as exc:
            load_config(p)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    msg = str(exc.value)
    assert "expands to more than 100,000 values" in msg and "refused before expanding it" in msg
    assert len(msg) < 2048 and "\n" not in msg
    assert elapsed < 2.0
    assert peak < 20 * 2**20  # bytes allocated while refusing it: not the 1.96 GB the expansion takes


def test_a_small_alias_still_works(tmp_path: Path) -> None:
    p = _write(tmp_path, f"name: &n t\ndescription: *n\ndata: {{path: {PENGUINS}, target: species}}\n"
                         "model: {estimator: decision_tree}\n", ".yaml")
    assert load_config(p).description == "t"


def test_a_wide_bad_value_is_echoed_in_a_bounded_message(tmp_path: Path) -> None:
    """A value that fails validation is echoed shortened, however large (the bomb's other half: its echo)."""
    bomb = _alias_bomb(levels=4, width=9)  # 6,561 leaves: under the node limit, far too long to echo
    text = YAML_HEAD + bomb.replace("a4: &a4", "description: ")  # a list where a string belongs
    p = _write(tmp_path, text, ".yaml")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert "description" in msg and "unknown key 'a0'" in msg
    assert len(msg) < 2048


@pytest.mark.parametrize(("suffix", "text"), [
    (".toml", HEAD + "x = " + "[" * 2000 + "]" * 2000 + "\n"),
    (".toml", HEAD + "x = " + "{a = " * 2000 + "1" + "}" * 2000 + "\n"),
    (".yaml", YAML_HEAD + "x: " + "[" * 2000 + "]" * 2000 + "\n"),
    (".yaml", YAML_HEAD + "".join(" " * i + f"k{i}:\n" for i in range(300))),
], ids=["toml-arrays", "toml-tables", "yaml-flow", "yaml-block"])
def test_deep_nesting_is_one_line(tmp_path: Path, suffix: str, text: str) -> None:
    with pytest.raises(ConfigError, match=r"nested (more than 32 levels deep|too deeply to read); a config is a "
                                          r"few flat tables") as exc:
        load_config(_write(tmp_path, text, suffix))
    assert "\n" not in str(exc.value)


def test_nesting_within_the_limit_reaches_validation(tmp_path: Path) -> None:
    """The depth limit is the limit: a structure just inside it is read and then judged as a config."""
    inner = "[" * (MAX_CONFIG_DEPTH - 2) + "1" + "]" * (MAX_CONFIG_DEPTH - 2)
    with pytest.raises(ConfigError, match="unknown key 'x' at x"):
        load_config(_write(tmp_path, f"x = {inner}\n" + HEAD + '[model]\nestimator = "ridge"\n'))


def test_a_config_that_is_not_utf8(tmp_path: Path) -> None:
    text = (HEAD + '[model]\nestimator = "decision_tree"\ndescription = "caf\xe9"\n').encode("latin-1")
    with pytest.raises(ConfigError, match=r"c.toml: not UTF-8 text \(byte 0xe9 on line 7\); save the config as "
                                          r"UTF-8$"):
        load_config(_write(tmp_path, text))


def test_an_oversized_config_is_not_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"2,000,001 bytes; a config is a few KB"):
        load_config(_write(tmp_path, "#" * 2_000_000 + "\n"))


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "just a string\n", "1: 2\n"])
def test_yaml_that_is_not_a_mapping_of_names(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match=r"expected a mapping at the top level|every key must be a name"):
        load_config(_write(tmp_path, text, ".yaml"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=300),
                      st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
                      st.lists(st.sampled_from(["[", "]", "{", "}", "a", "=", ":", "&x", "*x", "\n", "- ",
                                                "\"", "'", "1e400", "nan", "\xff"]), max_size=80)
                      .map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass"))),
       suffix=st.sampled_from([".toml", ".yaml"]))
def test_any_bytes_give_a_config_or_one_bounded_config_error(tmp_path: Path, data: bytes, suffix: str) -> None:
    """Random and malformed bytes: never another exception type, never a message past 2 KB."""
    p = tmp_path / f"fuzz{suffix}"
    p.write_bytes(data)
    try:
        load_config(p)
    except ConfigError as exc:
        assert 0 < len(str(exc)) < 2048
    else:  # pragma: no cover - a random file that happens to be a whole valid config
        pass


# -- model parameters: what sklearn's validation lets through but cannot run -----------------------------------

def _params(tmp_path: Path, estimator: str, params: str) -> Path:
    return _write(tmp_path, HEAD + f'[model]\nestimator = "{estimator}"\nparams = {{ {params} }}\n')


@pytest.mark.parametrize(("estimator", "params", "key"), [
    ("decision_tree", "max_depth = 100000000000000000000", "max_depth"),
    ("random_forest", "n_estimators = 2147483648", "n_estimators"),
    ("mlp", "max_iter = 99999999999999999999999", "max_iter"),
    ("mlp", "hidden_layer_sizes = [8, 100000000000000000000]", "hidden_layer_sizes"),
])
def test_whole_numbers_past_c_int_range_are_refused_at_load(tmp_path: Path, estimator: str, params: str,
                                                             key: str) -> None:
    with pytest.raises(ConfigError, match=rf"model.params.{key} = .* is out of range; whole-number parameters must "
                                          r"lie in \[-2147483648, 2147483647\]"):
        load_config(_params(tmp_path, estimator, params))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.one_of(st.integers(min_value=2**31, max_value=10**400), st.integers(max_value=-(2**31) - 1)))
def test_any_out_of_range_depth_is_refused(tmp_path: Path, depth: int) -> None:
    with pytest.raises(ConfigError, match="model.params.max_depth = .* is out of range") as exc:
        load_config(_params(tmp_path, "decision_tree", f"max_depth = {depth}"))
    assert len(str(exc.value)) < 300


def test_the_range_is_the_range(tmp_path: Path) -> None:
    """2**31 - 1 is what sklearn itself uses for an unbounded depth: accepted."""
    assert load_config(_params(tmp_path, "decision_tree", "max_depth = 2147483647")).model.params["max_depth"] \
        == 2**31 - 1


@pytest.mark.parametrize(("params", "key"), [("alpha = inf", "alpha"), ("alpha = nan", "alpha"),
                                             ("learning_rate_init = -inf", "learning_rate_init")])
def test_non_finite_parameters_are_refused(tmp_path: Path, params: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"model.params.{key} = .*: parameters must be finite numbers"):
        load_config(_params(tmp_path, "mlp", params))


def test_non_finite_settings_are_refused(tmp_path: Path) -> None:
    p = _write(tmp_path, HEAD + '[model]\nestimator = "ridge"\n[features]\nclip_outliers = { method = "iqr", '
                                'factor = inf }\n')
    with pytest.raises(ConfigError, match=r"features.clip_outliers.factor = inf: Input should be a finite number"):
        load_config(p)


def test_a_network_too_large_for_memory_is_refused_at_load(tmp_path: Path) -> None:
    p = _params(tmp_path, "mlp", "hidden_layer_sizes = [200000, 200000]")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"model.params.hidden_layer_sizes = \[200000, 200000\] needs at least "
                                          r"1,192\.\d GiB to fit even on the smallest table \(solver 'adam'\); "
                                          r".* GiB are available. Use fewer or smaller layers"):
        load_config(p)
    assert time.perf_counter() - t0 < 2.0  # estimated, not allocated


def test_the_memory_estimate_counts_what_sklearn_allocates() -> None:
    """Weights and biases of 3 -> 4 -> 2: (3+1)*4 + (4+1)*2 = 26 parameters; adam keeps 4 copies of them."""
    got = est_mod.mlp_memory_bytes([4], 3, 2, rows=10, solver="adam", batch_size="auto")
    assert got == 8 * (26 * 4 + 2 * 10 * (3 + 4 + 2))
    assert est_mod.mlp_memory_bytes([4], 3, 2, rows=10, solver="lbfgs", batch_size="auto") == \
        8 * (26 * 22 + 2 * 10 * 9)


def test_the_new_feature_keys_are_in_the_json_schema_and_validated(tmp_path: Path) -> None:
    feats = config_json_schema()["$defs"]["FeaturesConfig"]["properties"]
    assert feats["high_cardinality"]["enum"] == ["error", "drop", "keep"]
    assert feats["max_levels"]["minimum"] == 2 and feats["max_levels"]["maximum"] == 100_000
    p = _write(tmp_path, HEAD + '[model]\nestimator = "ridge"\n[features]\nhigh_cardinality = "ignore"\n')
    with pytest.raises(ConfigError, match=r"features.high_cardinality = 'ignore' is not allowed; expected 'error', "
                                          r"'drop' or 'keep'"):
        load_config(p)
    p = _write(tmp_path, HEAD + '[model]\nestimator = "ridge"\n[features]\nmax_levels = 1\n')
    with pytest.raises(ConfigError, match=r"features.max_levels = 1: Input should be greater than or equal to 2"):
        load_config(p)


def test_seeds_take_the_unsigned_32_bit_range(tmp_path: Path) -> None:
    assert load_config(_params(tmp_path, "decision_tree", f"random_state = {2**32 - 1}")).model.params[
        "random_state"] == 2**32 - 1
    with pytest.raises(ConfigError, match=r"model.params.random_state = 4.295e\+09 is out of range; whole-number "
                                          r"parameters must lie in \[0, 4294967295\]"):
        load_config(_params(tmp_path, "decision_tree", f"random_state = {2**32}"))


def test_a_float_where_sklearn_wants_a_whole_number_is_sklearns_own_refusal(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"The 'max_depth' parameter of DecisionTreeClassifier must be an int in the "
                                          r"range \[1, inf\) or None. Got 1e\+20 instead"):
        load_config(_params(tmp_path, "decision_tree", "max_depth = 1e20"))


def test_sklearns_echo_of_a_huge_value_is_shortened(tmp_path: Path) -> None:
    p = _write(tmp_path, YAML_HEAD.replace("{estimator: decision_tree}", "{estimator: decision_tree, params: "
                                           "{max_depth: [" + ", ".join(["7"] * 5_000) + "]}}"), ".yaml")
    with pytest.raises(ConfigError, match="The 'max_depth' parameter of DecisionTreeClassifier must be") as exc:
        load_config(p)
    assert len(str(exc.value)) < 700


def test_a_byte_order_mark_is_not_content(tmp_path: Path) -> None:
    text = HEAD + '[model]\nestimator = "decision_tree"\n'
    assert load_config(_write(tmp_path, b"\xef\xbb\xbf" + text.encode())).name == "t"
