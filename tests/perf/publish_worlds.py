"""Publish the embedded LLM worlds' artefacts: record their sha256 in ``benchmark/world_manifest.json``
and ship the demo's (mini-TOFU default: tokenizer, target, retain90) in ``tasks/prebuilt/``.

Run it only in an environment installed from the lock (``pip install -c constraints.txt``); it
records the installed versions as the manifest's ``built_with``. It trains what is missing
(prebuilt copies off), so run it with an empty ``$UNLEARNBENCH_HOME`` to publish worlds built
from scratch (mini-TOFU ~3-8 min, mini-MUSE ~3.5 min, mini-WMDP ~9 min on 2 cores):

    UNLEARNBENCH_HOME=$(mktemp -d) UNLEARNBENCH_PREBUILT=0 python tests/perf/publish_worlds.py [WORLD ...]

With no WORLD, every world below is published; an entry of a world not named is kept as it is.
"""

from __future__ import annotations

import os
import sys

# world -> (a task of it, the roles to build, the artefacts to record, the artefacts to ship)
PUBLISHED = {
    "mini-tofu": ("mini-tofu/forget10", ("target", "retain", "retain2"),
                  ("data", "tokenizer", "base", "target", "retain90", "retain90-seed1"),
                  ("tokenizer", "target", "retain90")),  # what `unlearnbench demo` needs: ~4.5 MB (float16)
    "mini-muse": ("mini-muse/news", ("target", "retain", "retain2"),
                  ("data", "tokenizer", "target", "retain", "retain2"), ()),
    "mini-wmdp": ("mini-wmdp/hazard", ("target", "retain"), ("data", "tokenizer", "target", "retain"), ()),
}


def publish(name: str) -> None:
    from unlearnbench import world_artefacts as wa
    from unlearnbench.registry import WORLDS
    from unlearnbench.runner import get_task

    task_name, build, record, ship = PUBLISHED[name]
    task = get_task(task_name)
    world = WORLDS.get(name)
    world.data_dir()
    world.prepare(task, build)
    root = world.root()
    data = wa.record(world.name, root, {r: root / r for r in record}, ship=ship)
    entry = data["worlds"][wa.key(world.name, root)]
    print(f"recorded {wa.key(world.name, root)}: {', '.join(f'{r} ({len(entry[r])} files)' for r in record)}")
    print(f"built with {data['built_with']}" + (f"; shipped {', '.join(ship)} to {wa.packaged()}" if ship else ""))


def main(argv: list[str]) -> int:
    os.environ["UNLEARNBENCH_PREBUILT"] = "0"
    os.environ.setdefault("UNLEARNBENCH_SCALE", "default")
    unknown = [w for w in argv if w not in PUBLISHED]
    if unknown:
        print(f"unknown world(s) {', '.join(unknown)}; published: {', '.join(PUBLISHED)}", file=sys.stderr)
        return 2
    for name in argv or PUBLISHED:
        publish(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
