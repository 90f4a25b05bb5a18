"""The README's demo table, from an actual run: runs ``unlearnbench demo`` cold (a fresh, empty
``$UNLEARNBENCH_HOME``), times it, and rewrites the table under ``## The demo`` in README.md
(or, with ``--check``, exits 1 when the README's table differs from the run's).

    python tests/perf/readme_numbers.py            # rewrite README.md, print the timings
    python tests/perf/readme_numbers.py --check    # compare only

Numbers are written to 3 significant digits (:func:`unlearnbench.demo.fmt_readme`);
``tests/test_readme_numbers.py`` (slow) checks the README against a fresh demo the same way.
Run it in an environment installed from the lock (``constraints.txt``); other versions give
other numbers, and unlearnbench says so when it loads the world.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
TABLE = re.compile(r"^\| model \| forget quality \|.*?\n(?=[^|])", re.S | re.M)


def readme_table(text: str) -> str:
    """The demo table in the README's text (the first table whose header starts ``| model | forget quality``)."""
    m = TABLE.search(text)
    if m is None:
        raise SystemExit("README.md has no demo table (a line starting `| model | forget quality |`)")
    return m.group(0).rstrip("\n")


def run_cold(home: Path) -> tuple[list[dict], dict]:
    """Run the CLI demo in ``home`` (empty) and return its rows and timings."""
    env = {**os.environ, "UNLEARNBENCH_HOME": str(home), "UNLEARNBENCH_QUIET": "1"}
    env.pop("UNLEARNBENCH_SCALE", None)
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([str(Path(sys.executable).with_name("unlearnbench")), "demo", "--quiet"], env=env, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    timings = {"wall_s": time.perf_counter() - t0, "user_s": after.ru_utime - before.ru_utime,
               "sys_s": after.ru_stime - before.ru_stime, "load_1min": os.getloadavg()[0]}
    os.environ["UNLEARNBENCH_HOME"] = str(home)  # warm rerun in this process: reads the results back
    from unlearnbench.demo import run_demo

    run_demo(progress=False, print_table=False)
    return run_demo.last["rows"], timings


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 when the README differs")
    ap.add_argument("--home", help="use this (empty or warm) UNLEARNBENCH_HOME instead of a fresh one")
    args = ap.parse_args(argv)
    from unlearnbench.demo import markdown_table

    with tempfile.TemporaryDirectory() as tmp:
        rows, timings = run_cold(Path(args.home) if args.home else Path(tmp))
    new = markdown_table(rows)
    text = README.read_text(encoding="utf-8")
    old = readme_table(text)
    print(new)
    print(f"demo: {timings['wall_s']:.1f} s wall, {timings['user_s']:.1f} s user, {timings['sys_s']:.1f} s sys "
          f"(1-minute load {timings['load_1min']:.1f}, {os.cpu_count()} cores)")
    if old == new:
        print("README.md: the demo table matches")
        return 0
    if args.check:
        print("README.md: the demo table differs:\n" + old, file=sys.stderr)
        return 1
    README.write_text(text.replace(old, new, 1), encoding="utf-8")
    print("README.md: demo table rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
