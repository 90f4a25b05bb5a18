"""Published world artefacts: the manifest check after a build or load, verified prebuilt copies,
the shipped bytes, and (slow) a build from scratch that gives the published bytes."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from unlearnbench import world_artefacts as wa
from unlearnbench.errors import UserError


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture()
def fake(tmp_path, monkeypatch):
    """A manifest publishing role 'model' of world 'w' at root '<home>/default-abc', and a prebuilt copy."""
    root = tmp_path / "home" / "default-abc"
    src = tmp_path / "prebuilt" / "w" / "default-abc" / "model"
    src.mkdir(parents=True)
    (src / "weights.bin").write_bytes(b"\x00\x01published")
    (src / "config.json").write_text("{}")
    doc = {"built_with": {"torch": "0.0.1-locked"},
           "worlds": {"w/default-abc": {"model": {"weights.bin": _sha(b"\x00\x01published"), "config.json": _sha(b"{}")}}}}
    monkeypatch.setattr(wa, "manifest", lambda: doc)
    monkeypatch.setattr(wa, "_checked", {})
    monkeypatch.setenv(wa.ENV_FOLDER, str(tmp_path / "prebuilt"))
    monkeypatch.delenv(wa.ENV_SWITCH, raising=False)
    return root, src


def test_prebuilt_copy_is_verified_and_installed(fake):
    root, src = fake
    out = root / "model"
    assert wa.install_prebuilt("w", root, "model", out)
    assert (out / "weights.bin").read_bytes() == b"\x00\x01published"
    assert json.loads((out / "prebuilt.json").read_text())["source"] == str(src)
    assert wa.check("w", root, "model", out)
    assert not wa.install_prebuilt("w", root, "other", root / "other")  # not published: train it


def test_altered_prebuilt_copy_is_refused(fake):
    root, src = fake
    (src / "weights.bin").write_bytes(b"\x00\x01tampered")
    with pytest.raises(UserError, match=r"does not match world_manifest.json \(weights.bin\)"):
        wa.install_prebuilt("w", root, "model", root / "model")
    assert not (root / "model").exists() and not any(root.glob(".model*"))  # nothing half-installed


def test_prebuilt_copies_can_be_switched_off(fake, monkeypatch):
    root, _ = fake
    monkeypatch.setenv(wa.ENV_SWITCH, "0")
    assert not wa.install_prebuilt("w", root, "model", root / "model")


def test_a_differing_build_warns_once_naming_the_versions(fake, capsys):
    root, _ = fake
    out = root / "model"
    out.mkdir(parents=True)
    (out / "weights.bin").write_bytes(b"built elsewhere")
    (out / "config.json").write_text("{}")
    assert not wa.check("w", root, "model", out)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning" in err and "weights.bin differ" in err
    assert f"torch {wa.installed_versions()['torch']} (locked 0.0.1-locked)" in err
    assert not wa.check("w", root, "model", out)
    assert capsys.readouterr().err == ""  # once per artefact and process
    assert wa.check("w", root, "unpublished", out)  # nothing to compare with


def test_world_check_command(fake, tmp_path, monkeypatch, capsys):
    from unlearnbench.cli import main

    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path / "cachehome"))
    root = tmp_path / "cachehome" / "worlds" / "w" / "default-abc"
    assert main(["world", "check"]) == 0
    assert "w/default-abc model: not in the cache; prebuilt copy verified" in capsys.readouterr().out
    assert wa.install_prebuilt("w", root, "model", root / "model")
    (root / "model" / "weights.bin").write_bytes(b"changed")
    assert main(["world", "check"]) == 1
    out = capsys.readouterr().out
    assert "w/default-abc model: DIFFERS (weights.bin)" in out and "(locked 0.0.1-locked)" in out


def test_shipped_artefacts_match_the_manifest():
    """Every file under tasks/prebuilt is published, and its bytes are the manifest's."""
    doc = json.loads(wa.MANIFEST.read_text())
    shipped = sorted(p for p in wa.packaged().rglob("*") if p.is_file())
    assert shipped, "no prebuilt world is shipped"
    for p in shipped:
        world, root, role, *rest = p.relative_to(wa.packaged()).parts
        assert doc["worlds"][f"{world}/{root}"][role]["/".join(rest)] == wa.sha256_file(p), p
    assert sum(p.stat().st_size for p in shipped) < 10_000_000  # the repository stays small (8.7 MB: fp32 target + retain)


def test_demo_world_is_published_under_the_current_recipe(monkeypatch):
    """A change to the mini-TOFU recipe or WORLD_VERSION moves its root: republish (tests/perf/publish_worlds.py)."""
    from unlearnbench.tasks import mini_tofu

    monkeypatch.setenv("UNLEARNBENCH_SCALE", "default")
    monkeypatch.delenv(wa.ENV_SWITCH, raising=False)
    root = mini_tofu.WORLD.root()
    for role in ("tokenizer", "target", "retain90"):
        assert wa.prebuilt_source("mini-tofu", root, role) is not None, role


def _publishing():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent / "perf" / "publish_worlds.py"
    spec = importlib.util.spec_from_file_location("publish_worlds", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.PUBLISHED


@pytest.mark.parametrize("name", ["mini-tofu", "mini-muse", "mini-wmdp"])
def test_llm_worlds_are_published_under_their_current_recipes(name, monkeypatch):
    """Every embedded LLM world's default artefacts are in the manifest under the root its
    current recipe and version give (a changed recipe moves the root: republish), so a build
    under other library versions warns that its numbers differ from the README's."""
    from unlearnbench.registry import WORLDS
    from unlearnbench.runner import get_task

    task_name, _, roles, _ = _publishing()[name]
    get_task(task_name)  # registers the worlds
    monkeypatch.setenv("UNLEARNBENCH_SCALE", "default")
    root = WORLDS.get(name).root()
    for role in roles:
        assert wa.expected(name, root, role), (name, role)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mini-tofu", "mini-muse", "mini-wmdp"])
def test_world_built_from_scratch_is_the_published_one(name, tmp_path, monkeypatch):
    """Under the locked versions, training a world gives the manifest's bytes (mini-TOFU ~3-8
    min, mini-MUSE ~3.5 min, mini-WMDP ~9 min on 2 cores)."""
    if wa.version_differences():
        pytest.skip("installed versions differ from the lock: " + ", ".join(wa.version_differences()))
    from unlearnbench.registry import WORLDS
    from unlearnbench.runner import get_task

    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path))
    monkeypatch.setenv("UNLEARNBENCH_SCALE", "default")
    monkeypatch.setenv("UNLEARNBENCH_QUIET", "1")
    monkeypatch.setenv(wa.ENV_SWITCH, "0")
    task_name, build, roles, _ = _publishing()[name]
    task = get_task(task_name)  # loads the catalogue (registers the worlds)
    world = WORLDS.get(name)
    world.prepare(task, build)
    for role in roles:
        assert wa.mismatches(name, world.root(), role, world.root() / role) == [], role
        assert not (world.root() / role / "prebuilt.json").exists()
