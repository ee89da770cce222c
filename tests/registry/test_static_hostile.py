"""`export_static` refuses what devices would refuse (the hostile trial of issue 15): a bundle damaged in the
registry was hashed as it lay and its hashes signed into the channel, so every device downloaded it, failed its
signature, and marked that version bad for good; an --out inside the registry wrote a foreign folder into it."""

from __future__ import annotations

from pathlib import Path

import pytest

from skedge.runtime import BundleError


@pytest.fixture
def reg(signed: Path, keys: tuple[Path, Path], tmp_path: Path) -> Path:
    from skedge.registry import init_registry, promote, publish

    root = init_registry(tmp_path / "reg", require_signatures=keys[1])
    publish(signed, root)
    promote(root, "penguins", "1.0.0", "prod", key=keys[0])
    return root


def test_a_bundle_damaged_in_the_registry_is_not_signed_into_a_channel(reg: Path, keys: tuple[Path, Path],
                                                                       tmp_path: Path) -> None:
    from skedge.registry import fsck
    from skedge.registry.static import export_static

    (stored,) = (reg / "bundles").iterdir()
    card = stored / "card.md"
    card.chmod(0o644)
    card.write_text(card.read_text() + "changed\n")
    assert not fsck(reg).consistent  # the registry's own check sees it too
    out = tmp_path / "site"
    with pytest.raises(BundleError, match=r"penguins@1\.0\.0 is damaged in the registry, nothing exported: .*card\.md"):
        export_static(reg, "penguins", out, key=keys[0])
    assert not out.exists()


def test_an_out_folder_inside_the_registry_is_refused(reg: Path, keys: tuple[Path, Path]) -> None:
    from skedge.registry.static import export_static

    for out in (reg, reg / "site"):
        with pytest.raises(BundleError, match="is inside the registry"):
            export_static(reg, "penguins", out, key=keys[0])
    assert not (reg / "penguins").exists()  # nothing written into the registry


def test_the_intact_registry_still_exports(reg: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    from skedge.registry.static import export_static

    (done,) = export_static(reg, "penguins", tmp_path / "site", key=keys[0])
    assert done.version == "1.0.0" and done.channel.is_file()
