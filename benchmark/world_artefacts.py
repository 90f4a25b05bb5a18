"""Published world artefacts: their expected sha256, prebuilt copies, and the check after every build or load.

An embedded world is deterministic for a given set of library versions, not across them (a
BPE trainer or a matmul kernel that changes moves every weight). So the published worlds are
pinned twice:

* ``world_manifest.json`` (beside this file) records the sha256 of every file of every
  published world artefact (``<world>/<scale>-<recipe hash>`` -> role -> file -> sha256) and
  the versions of the packages that built them (``built_with``; the same as ``constraints.txt``).
  :func:`check` compares an artefact with it after each build and each load from the cache;
  a mismatch prints one warning naming the files and the packages whose installed version
  differs from ``built_with`` (the usual cause), once per artefact and process.
* Prebuilt copies of the artefacts the demo needs ship inside the package
  (``tasks/prebuilt/<world>/<scale>-<hash>/<role>/``, float16 safetensors) and can also be
  given in a folder of the same layout, ``$UNLEARNBENCH_WORLDS``, searched first.
  :func:`install_prebuilt` copies one into the cache instead of training it, and verifies the
  copied bytes against the manifest (a copy that does not match is refused, never used).
  ``UNLEARNBENCH_PREBUILT=0`` turns prebuilt copies off: every artefact is then trained, and
  under the locked versions gives the same bytes (``tests/test_world_artefacts.py``, slow).

Files a build writes that are not part of the world (``*_recipe.json``, which holds timings)
are neither recorded nor shipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path

MANIFEST = Path(__file__).with_name("world_manifest.json")
ENV_FOLDER = "UNLEARNBENCH_WORLDS"
ENV_SWITCH = "UNLEARNBENCH_PREBUILT"
#: packages whose version can change a world's bytes (recorded in the manifest's ``built_with``)
PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "accelerate")
_checked: dict = {}  # (world root, role, folder, mtime) -> matched; one check and one warning per process


def packaged() -> Path:
    """``prebuilt/`` inside the installed ``unlearnbench.tasks`` package (source or wheel install)."""
    import unlearnbench.tasks

    return Path(unlearnbench.tasks.__file__).resolve().parent / "prebuilt"


def _skip(name: str) -> bool:
    return name.endswith("_recipe.json") or name.startswith(".")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def folder_hashes(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every world file under ``folder`` (sorted)."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and not _skip(p.name)}


@lru_cache(maxsize=1)
def manifest() -> dict:
    if not MANIFEST.exists():
        return {"built_with": {}, "worlds": {}}
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def key(world: str, root: Path) -> str:
    return f"{world}/{Path(root).name}"


def expected(world: str, root: Path, role: str) -> dict[str, str] | None:
    """The manifest's ``{file: sha256}`` of ``role`` in this world root (None: not published)."""
    return manifest()["worlds"].get(key(world, root), {}).get(role)


def installed_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": ".".join(map(str, sys.version_info[:2]))}
    for p in PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "not installed"
    return out


def version_differences() -> list[str]:
    """``"torch 2.15.0 (locked 2.14.1)"`` for every package whose version differs from the manifest's."""
    locked = manifest().get("built_with", {})
    here = installed_versions()
    return [f"{p} {here.get(p, 'not installed')} (locked {v})" for p, v in locked.items() if here.get(p) != v]


def mismatches(world: str, root: Path, role: str, folder: Path) -> list[str] | None:
    """Files of ``folder`` that differ from the manifest (missing ones included); None when unpublished."""
    want = expected(world, root, role)
    if want is None:
        return None
    folder = Path(folder)
    return [f for f, h in want.items() if not (folder / f).is_file() or sha256_file(folder / f) != h]


def check(world: str, root: Path, role: str, folder: Path) -> bool:
    """Compare a built or cached artefact with the manifest; warn once if it differs.

    Returns True when it matches or is not published, False after a warning."""
    try:
        stamp = Path(folder).stat().st_mtime_ns
    except OSError:
        stamp = None
    k = (key(world, root), role, str(folder), stamp)
    if k in _checked:
        return _checked[k]
    bad = mismatches(world, root, role, folder)
    _checked[k] = not bad
    if not bad:
        return True
    diff = version_differences()
    cause = (f"installed versions differ from the lock (constraints.txt): {', '.join(diff)}" if diff
             else "the package versions match the lock, so the CPU or its math library differs")
    print(f"unlearnbench: warning: the {world} world's '{role}' ({folder}) is not the published one "
          f"({', '.join(bad)} differ); {cause}; its numbers will differ from the README's", file=sys.stderr)
    return False


def checked(world: str, root: Path, role: str, folder: Path) -> Path:
    """:func:`check` ``folder`` and return it: what a world's build-or-load paths end with."""
    check(world, root, role, folder)
    return Path(folder)


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip() not in ("0", "false", "no", "off")


def prebuilt_source(world: str, root: Path, role: str) -> Path | None:
    """The first folder holding a prebuilt copy of ``role``: ``$UNLEARNBENCH_WORLDS``, then the package."""
    if not enabled() or expected(world, root, role) is None:
        return None
    rel = Path(world) / Path(root).name / role
    for base in (os.environ.get(ENV_FOLDER), packaged()):
        if base and (Path(base) / rel).is_dir():
            return Path(base) / rel
    return None


def install_prebuilt(world: str, root: Path, role: str, out: Path) -> bool:
    """Copy a prebuilt ``role`` into ``out`` (atomically) after verifying every byte; False when none exists.

    A copy whose files do not match the manifest raises :class:`UserError` (nothing is installed)."""
    src = prebuilt_source(world, root, role)
    if src is None:
        return False
    from unlearnbench.errors import UserError

    out = Path(out)
    tmp = out.parent / f".{out.name}.prebuilt-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    want = expected(world, root, role)
    for f in want:
        (tmp / f).parent.mkdir(parents=True, exist_ok=True)
        if (src / f).is_file():
            shutil.copyfile(src / f, tmp / f)
    bad = [f for f, h in want.items() if not (tmp / f).is_file() or sha256_file(tmp / f) != h]
    if bad:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"the prebuilt {world} '{role}' in {src} does not match world_manifest.json "
                        f"({', '.join(bad)}): a damaged or altered copy; remove it, or set {ENV_SWITCH}=0 to train it")
    (tmp / "prebuilt.json").write_text(json.dumps({"role": role, "source": str(src), "verified_sha256": want}, indent=1))
    try:
        os.replace(tmp, out)
    except OSError:  # a concurrent install won
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def record(world: str, root: Path, roles: dict[str, Path], *, ship: tuple[str, ...] = ()) -> dict:
    """Write the manifest entry of ``roles`` (``{role: folder}``) with the installed versions as
    ``built_with``, and copy the ``ship`` roles into the package's prebuilt folder. Run by
    ``tests/perf/publish_worlds.py`` under the locked versions only."""
    data = json.loads(MANIFEST.read_text(encoding="utf-8")) if MANIFEST.exists() else {"worlds": {}}
    data["built_with"] = installed_versions()
    entry = data.setdefault("worlds", {}).setdefault(key(world, root), {})
    for role, folder in roles.items():
        entry[role] = folder_hashes(folder)
        if role in ship:
            dst = packaged() / world / Path(root).name / role
            shutil.rmtree(dst, ignore_errors=True)
            dst.mkdir(parents=True)
            for f in entry[role]:
                (dst / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(folder) / f, dst / f)
    data = {"built_with": data["built_with"], "worlds": dict(sorted(data["worlds"].items()))}
    MANIFEST.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    manifest.cache_clear()
    return data


# -- `unlearnbench world check` ------------------------------------------------------------------
def check_report() -> tuple[list[str], bool]:
    """Lines describing every published artefact in this cache and in the prebuilt copies; ok flag."""
    from unlearnbench import cache

    lines, ok = [], True
    diff = version_differences()
    lines.append("package versions: " + ("as locked (constraints.txt)" if not diff else "differ from the lock: " + ", ".join(diff)))
    for k, roles in manifest()["worlds"].items():
        world, root_name = k.split("/", 1)
        root = cache.home() / "worlds" / world / root_name
        for role in roles:
            folder = root / role
            if not folder.exists():
                state = "not in the cache"
            else:
                bad = mismatches(world, root, role, folder)
                state = "matches the manifest" if not bad else f"DIFFERS ({', '.join(bad)})"
                ok = ok and not bad
            src = prebuilt_source(world, root, role)
            if src is not None:
                pbad = mismatches(world, root, role, src)
                state += "; prebuilt copy " + ("verified" if not pbad else f"DAMAGED ({', '.join(pbad)})")
                ok = ok and not pbad
            lines.append(f"{k} {role}: {state}")
    return lines, ok


def cmd_world_check(args) -> int:
    lines, ok = check_report()
    print("\n".join(lines))
    return 0 if ok else 1


def register(sub) -> None:
    """``unlearnbench world check`` (plugged into the CLI)."""
    p = sub.add_parser("world", help="published world artefacts")
    wsub = p.add_subparsers(dest="world_cmd", required=True)
    c = wsub.add_parser("check", help="compare the cached and prebuilt world artefacts with world_manifest.json; "
                                      "exit 1 when one differs")
    c.set_defaults(func=cmd_world_check)
