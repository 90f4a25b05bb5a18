"""Publish the embedded worlds' artefacts: record their sha256 in ``benchmark/world_manifest.json``
and ship the demo's (mini-TOFU default: tokenizer, target, retain90) in ``tasks/prebuilt/``.

Run it only in an environment installed from the lock (``pip install -c constraints.txt``); it
records the installed versions as the manifest's ``built_with``. It trains what is missing
(prebuilt copies off), so run it with an empty ``$UNLEARNBENCH_HOME`` to publish a world built
from scratch:

    UNLEARNBENCH_HOME=$(mktemp -d) UNLEARNBENCH_PREBUILT=0 python tests/perf/publish_worlds.py
"""

from __future__ import annotations

import os
import sys

SHIP = ("tokenizer", "target", "retain90")  # what `unlearnbench demo` needs: ~4.5 MB (float16)
RECORD = ("data", "tokenizer", "base", "target", "retain90", "retain90-seed1")


def main() -> int:
    os.environ["UNLEARNBENCH_PREBUILT"] = "0"
    os.environ.setdefault("UNLEARNBENCH_SCALE", "default")
    from unlearnbench import world_artefacts as wa
    from unlearnbench.registry import WORLDS
    from unlearnbench.runner import get_task

    task = get_task("mini-tofu/forget10")
    world = WORLDS.get("mini-tofu")
    world.data_dir()
    world.prepare(task, ("target", "retain", "retain2"))
    root = world.root()
    roles = {r: root / r for r in RECORD}
    data = wa.record(world.name, root, roles, ship=SHIP)
    entry = data["worlds"][wa.key(world.name, root)]
    print(f"recorded {wa.key(world.name, root)}: {', '.join(f'{r} ({len(entry[r])} files)' for r in roles)}")
    print(f"built with {data['built_with']}; shipped {', '.join(SHIP)} to {wa.packaged()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
