"""Every failure of `skedge train` is one line on stderr, a non-zero exit, no traceback, nothing written;
--debug shows the traceback; a reader that stops reading (`| head -1`) is not an error."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skedge.cli import main
from skedge.cli._ui import MAX_MESSAGE_CHARS, describe_failure

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CLI = [sys.executable, "-m", "skedge.cli"]


def _not_progress(stderr: str) -> list[str]:
    """stderr without the export's stage lines (`    convert to ONNX (…) …`): what is left are errors and warnings."""
    return [ln for ln in stderr.splitlines() if not ln.startswith("    ")]


def _config(tmp_path: Path, data: Path | str, model: str = 'estimator = "decision_tree"\nparams = { max_depth = 2 }',
            extra: str = "", suffix: str = ".toml") -> Path:
    p = tmp_path / f"c{suffix}"
    p.write_text(f'name = "cli"\n[data]\npath = "{data}"\ntarget = "species"\n[model]\n{model}\n'
                 f'[export]\ntargets = ["onnx"]\n{extra}')
    return p


def _frame(change: str) -> pd.DataFrame:
    df = pd.read_csv(EXAMPLES / "penguins.csv")
    if change == "single-class":
        return df[df.species == "Adelie"]
    if change == "inf":
        df.loc[9, "flipper_length_mm"] = np.inf
    elif change == "unknown-cell":
        df["flipper_length_mm"] = df["flipper_length_mm"].astype(object)
        df.loc[12, "flipper_length_mm"] = "unknown"
    elif change == "id-column":
        df["order_id"] = [f"O-{i}" for i in range(len(df))]
    elif change == "tiny":
        return pd.concat([df[df.species == s].head(3) for s in ("Adelie", "Gentoo")])
    return df


def _case(tmp_path: Path, case: str) -> Path:
    data = tmp_path / "d.csv"
    if case in ("single-class", "inf", "unknown-cell", "id-column", "tiny"):
        _frame(case).to_csv(data, index=False)
        return _config(tmp_path, data, extra="[evaluation]\nholdout = 0.05\n" if case == "tiny" else "")
    penguins = EXAMPLES / "penguins.csv"
    if case == "max-depth-1e20":
        return _config(tmp_path, penguins,
                       'estimator = "decision_tree"\nparams = { max_depth = 100000000000000000000 }')
    if case == "mlp-too-large":
        return _config(tmp_path, penguins, 'estimator = "mlp"\nparams = { hidden_layer_sizes = [300000, 300000] }')
    p = tmp_path / ("c.yaml" if case in ("alias-bomb", "deep-yaml") else "c.toml")
    if case == "not-utf8":
        p.write_bytes(_config(tmp_path, penguins).read_text().replace('"cli"', '"caf\xe9"').encode("latin-1"))
    elif case == "deep-toml":
        p.write_text(_config(tmp_path, penguins).read_text() + "[x]\ny = " + "[" * 2000 + "]" * 2000 + "\n")
    elif case == "deep-yaml":
        p.write_text("name: cli\nx: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n")
    elif case == "alias-bomb":
        lines = ['a0: &a0 ["lol"]'] + [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
        p.write_text("\n".join(lines) + "\n")
    return p


CASES = {
    "single-class": r"the target 'species' has a single class \('Adelie'\)",
    "tiny": r"evaluation.holdout = 0.05 of 6 rows holds out 1 row",
    "inf": r"column 'flipper_length_mm' holds infinite values \(row 9 inf\)",
    "unknown-cell": r"column 'flipper_length_mm' holds numbers, but 1 of its 342 cells are not numbers \(row 12 "
                    r"'unknown'\)",
    "id-column": r"column 'order_id' has 344 distinct values in 344 rows",
    "max-depth-1e20": r"model.params.max_depth = 1.000e\+20 is out of range",
    "mlp-too-large": r"model.params.hidden_layer_sizes = \[300000, 300000\] needs at least [\d,.]+ GiB to fit",
    "not-utf8": r"not UTF-8 text \(byte 0xe9 on line 1\)",
    "deep-toml": r"nested (more than 32 levels deep|too deeply to read)",
    "deep-yaml": r"nested more than 32 levels deep",
    "alias-bomb": r"expands to more than 100,000 values .* refused before expanding it",
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_failure_is_one_line_and_writes_nothing(tmp_path: Path, case: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import re

    cfg = _case(tmp_path, case)
    out = tmp_path / "models"
    code = main(["train", str(cfg), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert re.search(CASES[case], err), err
    assert "Traceback" not in err and len(err) < MAX_MESSAGE_CHARS + 20
    assert not out.exists()


def test_the_alias_bomb_through_the_command_is_fast_and_short(tmp_path: Path) -> None:
    cfg = _case(tmp_path, "alias-bomb")
    t0 = time.perf_counter()
    res = subprocess.run([*CLI, "train", str(cfg), "--out", str(tmp_path / "m")], capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    assert res.returncode == 1 and "refused before expanding it" in res.stderr
    assert len(res.stderr) < 2048 and res.stderr.count("\n") == 1
    assert elapsed < 15  # the interpreter and its imports; the refusal itself is milliseconds (test_hostile_config)


def test_a_library_failure_is_wrapped_with_what_to_do_and_debug_shows_it(tmp_path: Path) -> None:
    """sklearn validates penalty='l1' and solver='lbfgs' one by one and refuses the pair only inside fit."""
    cfg = _config(tmp_path, EXAMPLES / "penguins.csv",
                  'estimator = "logistic_regression"\nparams = { penalty = "l1", solver = "lbfgs" }')
    res = subprocess.run([*CLI, "train", str(cfg), "--out", str(tmp_path / "m")], capture_output=True, text=True)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    assert lines[-1].startswith("error: scikit-learn failed while training: ValueError: Solver lbfgs supports only "
                                "'l2' or None penalties, got l1 penalty. What to do: check the data file and "
                                "model.params against what the estimator accepts (--debug shows the traceback)")
    # sklearn's FutureWarning about `penalty` is one line too, not file:line plus the source line
    assert all(ln.startswith(("error: ", "warning: ")) for ln in _not_progress(res.stderr)), lines
    assert not (tmp_path / "m").exists()


@pytest.mark.filterwarnings("ignore:'penalty' was deprecated:FutureWarning")
@pytest.mark.parametrize("where", ["after", "before"])
def test_debug_lets_the_exception_through(tmp_path: Path, where: str) -> None:
    """`skedge train c.toml --debug` and `skedge --debug train c.toml`: the original exception, for its traceback."""
    cfg = _config(tmp_path, EXAMPLES / "penguins.csv",
                  'estimator = "logistic_regression"\nparams = { penalty = "l1", solver = "lbfgs" }')
    args = ["train", str(cfg), "--out", str(tmp_path / "m")]
    with pytest.raises(ValueError, match="Solver lbfgs supports only 'l2' or None penalties"):
        main([*args, "--debug"] if where == "after" else ["--debug", *args])


def test_library_exceptions_name_their_library(tmp_path: Path) -> None:
    import onnxruntime as ort

    with pytest.raises(np.linalg.LinAlgError) as info:
        np.linalg.inv(np.zeros((2, 2)))
    assert describe_failure(info.value, "export").startswith(
        "numpy failed while exporting: LinAlgError: Singular matrix. What to do: check that the sample has")
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(Exception) as ort_info:  # noqa: B017 - onnxruntime's own exception types
        ort.InferenceSession(str(bad), providers=["CPUExecutionProvider"])
    msg = describe_failure(ort_info.value, "verify")
    assert msg.startswith("onnxruntime failed while verifying: ") and "export it again" in msg
    assert len(msg) < 600
    from sklearn.preprocessing import StandardScaler

    with pytest.raises(ValueError) as sk_info:  # raised while sklearn converts with numpy: sklearn is named
        StandardScaler().fit(np.array([["a"], ["b"]], dtype=object))
    assert describe_failure(sk_info.value, "train").startswith("scikit-learn failed while training: ValueError: ")
    # a library function that fails inside numpy: the library skedge (here: the test) called is the one named
    ns: dict[str, object] = {"__name__": "sklearn._fake", "np": np}
    exec("def fit():\n    return np.linalg.inv(np.zeros((2, 2)))", ns)
    with pytest.raises(np.linalg.LinAlgError) as nested:
        ns["fit"]()  # type: ignore[operator]
    assert describe_failure(nested.value, "train").startswith("scikit-learn failed while training: LinAlgError")
    missing: dict[str, int] = {}
    with pytest.raises(KeyError) as key_info:
        missing["x"]
    assert describe_failure(key_info.value, "predict") == (
        "unexpected KeyError while predicting: 'x'. This is a skedge bug: please report it with the output of --debug")


def _popen_reader_gone(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command whose stdout reader has already gone away, as `| head -1` leaves it."""
    read, write = os.pipe()
    os.close(read)  # nobody will read: every write to `write` fails with EPIPE
    try:
        res = subprocess.run(args, stdout=write, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write)
    return res


def test_a_reader_that_stops_reading_is_not_an_error(tmp_path: Path) -> None:
    res = _popen_reader_gone([*CLI, "config-schema"])
    assert res.stderr == ""  # no "error: [Errno 32] Broken pipe", no "Exception ignored … BrokenPipeError"
    assert res.returncode == 141  # as a command killed by SIGPIPE: `cat`, `git log` under `| head`
    cfg = _config(tmp_path, EXAMPLES / "penguins.csv")
    res = _popen_reader_gone([*CLI, "train", str(cfg), "--out", str(tmp_path / "m")])
    assert _not_progress(res.stderr) == [] and res.returncode == 141, res.stderr
    assert (tmp_path / "m" / "cli" / "1.0.0" / "model.onnx").exists()  # the work was done; only the report unread


def test_head_dash_one_in_a_shell() -> None:
    """`skedge … | head -1` in a shell: the first line, no error (the schema is longer than what head reads)."""
    res = subprocess.run(["bash", "-c", f"{sys.executable} -m skedge.cli config-schema | head -1"],
                         capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout == "{\n" and res.stderr == ""


def test_warnings_are_lines_and_inspect_caps_the_categories(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    df = _frame("id-column")
    df["day"] = pd.date_range("2021-01-01", periods=len(df)).strftime("%Y-%m-%d")
    df.to_csv(tmp_path / "d.csv", index=False)
    cfg = _config(tmp_path, tmp_path / "d.csv", extra='[features]\nhigh_cardinality = "drop"\n')
    cfg.write_text(cfg.read_text().replace('target = "species"', 'target = "species"\nkinds = { order_id = '
                                                                 '"category" }'))
    res = subprocess.run([*CLI, "train", str(cfg), "--out", str(tmp_path / "m")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert _not_progress(res.stderr) == [
        f"warning: {tmp_path / 'd.csv'}: column 'day' left out: 344 distinct values in 344 rows (dates or times? "
        'derive year, month or day of week from them instead); features.high_cardinality = "drop" '
        "(features.max_levels = 100)"]
    assert main(["inspect", str(tmp_path / "m" / "cli" / "1.0.0")]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("order_id"))
    assert "O-0, O-1, O-10, O-100, O-101, O-102, O-103, O-104, … (344 in all; --json lists them)" in line
    assert max(len(ln) for ln in out.splitlines()) < 300
