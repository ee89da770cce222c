"""The registry as plain files: publish, promote, rollback, history, resolve, fsck, signed alias records."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from skedge.registry import fsck, history, init_registry, listing, promote, publish, resolve, rollback
from skedge.runtime import BundleError, load
from skedge.runtime.signing import sign_bundle

from .conftest import as_version, copy_bundle, rehash

DATA = Path(__file__).resolve().parents[2] / "examples" / "penguins.csv"


@pytest.fixture
def versions(penguins_bundle: Path, tmp_path: Path) -> dict[str, Path]:
    """Three versions of the same model (other identities): enough for alias moves without the gate."""
    return {v: as_version(penguins_bundle, tmp_path / v, v) for v in ("1.0.0", "1.1.0", "1.2.0")}


def test_publish_is_content_addressed_and_immutable(versions: dict[str, Path], tmp_path: Path) -> None:
    reg = init_registry(tmp_path / "reg")
    first = publish(versions["1.0.0"], reg)
    assert first.created and first.path == reg / "bundles" / load(versions["1.0.0"]).digest
    assert load(first.path).version == "1.0.0"
    again = publish(versions["1.0.0"], reg)
    assert not again.created and again.digest == first.digest
    other = copy_bundle(versions["1.0.0"], tmp_path / "other")
    (other / "card.md").write_text("another card")
    rehash(other)
    with pytest.raises(BundleError, match=r"penguins@1.0.0 is already published with other content"):
        publish(other, reg)
    assert sorted(p.name for p in (reg / "bundles").iterdir()) == [first.digest]
    assert listing(reg)[0]["versions"]["1.0.0"]["digest"] == first.digest
    with pytest.raises(BundleError, match="already a registry"):
        init_registry(reg)


def test_publish_refuses_a_damaged_bundle(versions: dict[str, Path], tmp_path: Path) -> None:
    reg = init_registry(tmp_path / "reg")
    (versions["1.0.0"] / "golden.json").write_text("{}")
    with pytest.raises(BundleError, match="golden.json does not match its manifest"):
        publish(versions["1.0.0"], reg)
    assert not list((reg / "bundles").iterdir())


@pytest.mark.parametrize(("version", "name", "what"), [("1.0.0\n", "penguins", "is not semver"),
                                                       ("1.0.0", "penguins\n", "is not a plain name")])
def test_publish_refuses_a_crafted_name_or_version_with_a_final_newline(penguins_bundle: Path, tmp_path: Path,
                                                                        version: str, name: str, what: str) -> None:
    # '$' matched before a final newline: a manifest claiming "1.0.0\n" was published as versions/1.0.0\n.json
    crafted = as_version(penguins_bundle, tmp_path / "crafted", version)
    rehash(crafted, lambda m: m.update(name=name))
    reg = init_registry(tmp_path / "reg")
    with pytest.raises(BundleError, match=what):
        publish(crafted, reg)
    assert not list((reg / "bundles").iterdir())


def test_a_registry_that_requires_signatures(versions: dict[str, Path], keys: tuple[Path, Path],
                                             other_keys: tuple[Path, Path], tmp_path: Path) -> None:
    reg = init_registry(tmp_path / "reg", require_signatures=keys[1])
    with pytest.raises(BundleError, match="is not signed, and .* accepts only signed bundles"):
        publish(versions["1.0.0"], reg)
    sign_bundle(versions["1.1.0"], other_keys[0])
    with pytest.raises(BundleError, match="signed by another key"):
        publish(versions["1.1.0"], reg)
    sign_bundle(versions["1.0.0"], keys[0])
    assert publish(versions["1.0.0"], reg).signed
    with pytest.raises(BundleError, match="alias moves must be signed, give --key"):
        promote(reg, "penguins", "1.0.0", "prod")
    with pytest.raises(BundleError, match="is not the key this registry trusts"):
        promote(reg, "penguins", "1.0.0", "prod", key=other_keys[0])
    promote(reg, "penguins", "1.0.0", "prod", key=keys[0])
    model = load(reg, name="penguins", alias="prod", trust=keys[1])
    assert model.version == "1.0.0" and model.verify().passed


def test_promote_rollback_history_resolve(versions: dict[str, Path], tmp_path: Path) -> None:
    reg = init_registry(tmp_path / "reg")
    for b in versions.values():
        publish(b, reg)
    m1 = promote(reg, "penguins", "1.0.0", "prod")
    assert (m1.previous, m1.sequence) == (None, 1)
    with pytest.raises(Exception, match="the gate needs labelled data"):
        promote(reg, "penguins", "1.1.0", "prod")  # no benchmark yet: no silent promotion
    with pytest.raises(BundleError, match="--force needs --reason"):
        promote(reg, "penguins", "1.1.0", "prod", force=True)
    promote(reg, "penguins", "1.1.0", "prod", force=True, reason="hotfix")
    promote(reg, "penguins", "1.2.0", "prod", force=True, reason="hotfix 2")
    promote(reg, "penguins", "1.0.0", "staging")
    assert resolve(reg, "penguins", "prod").version == "1.2.0"
    assert rollback(reg, "penguins", "prod").version == "1.1.0"
    assert rollback(reg, "penguins", "prod").version == "1.0.0"
    with pytest.raises(BundleError, match="nothing to roll penguins@prod back to"):
        rollback(reg, "penguins", "prod")
    assert resolve(reg, "penguins", "prod").version == "1.0.0"
    assert resolve(reg, "penguins", "staging").version == "1.0.0"
    assert resolve(reg, "penguins", "1.2.0").version == "1.2.0"  # a version reads as semver
    with pytest.raises(BundleError, match="no version of 'penguins' holds the alias 'canary'"):
        resolve(reg, "penguins", "canary")
    events = history(reg, "penguins", alias="prod")
    assert isinstance(events, list)
    assert [(e["type"], e["version"], e["reason"]) for e in events] == [
        ("promote", "1.0.0", None), ("promote", "1.1.0", "hotfix"), ("promote", "1.2.0", "hotfix 2"),
        ("rollback", "1.1.0", None), ("rollback", "1.0.0", None)]
    assert [e["sequence"] for e in events] == [1, 2, 3, 5, 6]
    at = history(reg, "penguins", at=events[1]["time"])
    assert at == {"prod": "1.1.0"}
    assert history(reg, "penguins", at="2000-01-01") == {}
    snap = json.loads((reg / "names" / "penguins" / "aliases.json").read_text())
    assert snap["prod"]["version"] == "1.0.0" and snap["staging"]["version"] == "1.0.0"
    assert fsck(reg).consistent


def test_signed_alias_records_refuse_a_replayed_registry(versions: dict[str, Path], keys: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    reg = init_registry(tmp_path / "reg", require_signatures=keys[1])
    for b in versions.values():
        sign_bundle(b, keys[0])
        publish(b, reg)
    promote(reg, "penguins", "1.0.0", "prod", key=keys[0])
    old_state = tmp_path / "old-state"
    shutil.copytree(reg, old_state)  # what an attacker keeps to serve later
    promote(reg, "penguins", "1.1.0", "prod", force=True, reason="fix", key=keys[0])
    assert load(reg, name="penguins", alias="prod", trust=keys[1]).version == "1.1.0"
    # a rollback is a new, higher record naming an older version: accepted
    rollback(reg, "penguins", "prod", key=keys[0])
    assert load(reg, name="penguins", alias="prod", trust=keys[1]).version == "1.0.0"
    shutil.rmtree(reg)
    shutil.copytree(old_state, reg)  # the registry replayed as it was before
    with pytest.raises(BundleError, match=r"alias record penguins@prod has sequence 1, lower than 3 .*replayed"):
        load(reg, name="penguins", alias="prod", trust=keys[1])
    # an unsigned record in a trusted log is refused too
    log = reg / "names" / "penguins" / "log" / "00000001.json"
    env = json.loads(log.read_text())
    env["signatures"] = []
    log.write_text(json.dumps(env))
    with pytest.raises(BundleError, match="00000001.json carries no signature"):
        load(reg, name="penguins", alias="prod", trust=keys[1], state_dir=tmp_path / "fresh")


def test_a_rewritten_event_breaks_the_chain(versions: dict[str, Path], tmp_path: Path) -> None:
    reg = init_registry(tmp_path / "reg")
    for b in versions.values():
        publish(b, reg)
    promote(reg, "penguins", "1.0.0", "prod")
    promote(reg, "penguins", "1.1.0", "prod", force=True, reason="x")
    promote(reg, "penguins", "1.2.0", "prod", force=True, reason="y")
    first = reg / "names" / "penguins" / "log" / "00000001.json"
    env = json.loads(first.read_text())
    import base64

    payload = json.loads(base64.b64decode(env["payload"]))
    payload["version"] = "1.2.0"  # history rewritten: "1.2.0 held prod first"
    env["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    first.write_text(json.dumps(env))
    with pytest.raises(BundleError, match="00000002.json: the hash chain is broken"):
        resolve(reg, "penguins", "prod")
    rep = fsck(reg, repair=True)
    assert not rep.consistent and any("hash chain is broken" in p for p in rep.problems)


def test_two_concurrent_promotions_one_wins(versions: dict[str, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Both read the log, both pass their checks, both try to append: one event, one clear failure."""
    import skedge.registry._alias as alias_mod

    reg = init_registry(tmp_path / "reg")
    for b in versions.values():
        publish(b, reg)
    promote(reg, "penguins", "1.0.0", "prod")
    barrier = threading.Barrier(2, timeout=30)
    real_load = alias_mod._load

    def slow_load(*a: object) -> object:
        model = real_load(*a)  # type: ignore[arg-type]
        barrier.wait()  # both promotions have read the same head of the log
        return model

    monkeypatch.setattr(alias_mod, "_load", slow_load)
    results: dict[str, object] = {}

    def run(version: str) -> None:
        try:
            results[version] = promote(reg, "penguins", version, "prod", data=DATA)  # both bring the benchmark
        except BundleError as exc:
            results[version] = exc

    threads = [threading.Thread(target=run, args=(v,)) for v in ("1.1.0", "1.2.0")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    failed = [v for v, r in results.items() if isinstance(r, BundleError)]
    won = [v for v, r in results.items() if not isinstance(r, BundleError)]
    assert len(failed) == 1 and len(won) == 1, results
    assert "another alias move of 'penguins' (event 2) was written while this one ran: nothing changed" in \
        str(results[failed[0]])
    events = history(reg, "penguins")
    assert isinstance(events, list) and len(events) == 2
    assert resolve(reg, "penguins", "prod").version == won[0]
    assert events[1]["gate"]["passed"] and events[1]["data"]
    assert [p.name for p in (reg / "data").iterdir()] == [events[1]["data"]]  # kept once, for the winner
    rep = fsck(reg)
    assert rep.consistent and not rep.repairable, rep


def test_concurrent_promotions_as_processes(versions: dict[str, Path], tmp_path: Path) -> None:
    """Real processes, started together: every success is one event, every failure changed nothing."""
    reg = init_registry(tmp_path / "reg")
    for b in versions.values():
        publish(b, reg)
    cmd = [sys.executable, "-m", "skedge.cli", "promote"]
    procs = [subprocess.Popen([*cmd, f"penguins@{v}", "--alias", "prod", "--registry", str(reg), "--force",
                               "--reason", "race"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for v in ("1.0.0", "1.1.0", "1.2.0")]
    outs = [p.communicate(timeout=120) for p in procs]
    ok = [p.returncode == 0 for p in procs]
    for (_out, err), good in zip(outs, ok, strict=True):
        if not good:
            assert "was written while this one ran: nothing changed" in err, err
    events = history(reg, "penguins")
    assert isinstance(events, list) and len(events) == sum(ok) >= 1
    assert fsck(reg).consistent


def test_fsck_finds_and_repairs_what_a_killed_writer_left(versions: dict[str, Path], tmp_path: Path) -> None:
    reg = init_registry(tmp_path / "reg")
    publish(versions["1.0.0"], reg)
    promote(reg, "penguins", "1.0.0", "prod")
    assert fsck(reg).consistent
    (reg / ".tmp").mkdir(exist_ok=True)
    (reg / ".tmp" / "999999999-abc.d").mkdir()  # a dead pid's half-written bundle
    shutil.copytree(versions["1.1.0"], reg / "bundles" / ("f" * 64))  # stored, never claimed
    (reg / "names" / "penguins" / "aliases.json").write_text("{}")  # the snapshot of a cut-short move
    rep = fsck(reg)
    assert not rep.consistent and len(rep.repairable) == 3 and not rep.problems
    cli = subprocess.run([sys.executable, "-m", "skedge.cli", "fsck", "--registry", str(reg)], capture_output=True,
                         text=True, timeout=60)
    assert cli.returncode == 1 and "needs repair" in cli.stdout
    rep = fsck(reg, repair=True)
    assert rep.consistent and len(rep.repaired) == 3
    assert fsck(reg).consistent and not fsck(reg).repairable
    assert resolve(reg, "penguins", "prod").version == "1.0.0"


def test_a_version_claim_pointing_elsewhere_is_refused(versions: dict[str, Path], keys: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    reg = init_registry(tmp_path / "reg", require_signatures=keys[1])
    for b in versions.values():
        sign_bundle(b, keys[0])
        publish(b, reg)
    # explicit versions are what the app asked for: an older one after a newer one is not a replay
    assert load(reg, name="penguins", alias="1.1.0", trust=keys[1]).version == "1.1.0"
    assert load(reg, name="penguins", alias="1.0.0", trust=keys[1]).version == "1.0.0"
    claims = reg / "names" / "penguins" / "versions"
    old = json.loads((claims / "1.0.0.json").read_text())
    new = json.loads((claims / "1.2.0.json").read_text())
    new["digest"] = old["digest"]  # "1.2.0" now names the bundle of 1.0.0, validly signed
    (claims / "1.2.0.json").write_text(json.dumps(new))
    with pytest.raises(BundleError, match=r"the registry names it penguins@1.2.0, its manifest says version 1.0.0"):
        load(reg, name="penguins", alias="1.2.0", trust=keys[1])
    assert any("penguins@1.2.0: the stored bundle is not the one claimed" in p for p in fsck(reg).problems)


def test_a_benchmark_without_the_target_is_refused_at_once(versions: dict[str, Path], tmp_path: Path) -> None:
    reg = init_registry(tmp_path / "reg")
    publish(versions["1.0.0"], reg)
    rows = tmp_path / "no_target.csv"
    header = DATA.read_text().splitlines()[0].split(",")
    keep = [i for i, c in enumerate(header) if c != "species"]
    lines = DATA.read_text().splitlines()[:5]
    rows.write_text("".join(",".join(ln.split(",")[i] for i in keep) + "\n" for ln in lines))
    from skedge.runtime import DataError

    with pytest.raises(DataError, match="the target column .species. is not in the file"):
        promote(reg, "penguins", "1.0.0", "prod", data=rows)
    assert history(reg, "penguins") == [] and not list((reg / "data").iterdir())
