"""CLI plug-in: ``unlearnbench leaderboard validate|verify|build|render``, ``unlearnbench table`` and
``unlearnbench evaluate-modules`` (every metric as a Hugging Face ``evaluate`` module folder).

Loaded by ``unlearnbench.cli`` through its plug-in list. Every command prints one line per
problem (``<file>: <what>``) and exits 2 when there is any.
"""

from __future__ import annotations

import sys

from unlearnbench.errors import UserError


def _report(reports, verb: str, quiet: bool = False) -> int:
    bad = 0
    for rep in reports:
        for line in rep.lines():
            print(line, file=sys.stderr if not line.split(": ", 1)[1].startswith("note:") else sys.stdout)
        if rep.ok:
            if not quiet:
                print(f"{rep.path}: {verb}")
        else:
            bad += 1
    total = len(reports)
    print(f"{total - bad}/{total} file(s) {verb}", file=sys.stderr if bad else sys.stdout)
    return 2 if bad else 0


def cmd_validate(args) -> int:
    from unlearnbench.leaderboard.checks import validate_files

    return _report(validate_files(args.files, root=args.root, allow_external_references=args.local), "valid", args.quiet)


def cmd_verify(args) -> int:
    from unlearnbench.leaderboard.verify import verify_files

    return _report(verify_files(args.files, root=args.root, allow_external_references=args.local,
                                allow_ingested=args.allow_ingested, data=args.data), "verified", args.quiet)


def link_prefix(page: str, board: str) -> str:
    """Relative path from a page's folder to a leaderboard JSON's folder (file links are relative to the latter)."""
    import os
    from pathlib import Path, PurePosixPath

    rel = os.path.relpath(Path(board).resolve().parent, Path(page).resolve().parent)
    return "" if rel == "." else PurePosixPath(Path(rel)).as_posix() + "/"


def cmd_build(args) -> int:
    from pathlib import Path

    from unlearnbench.leaderboard.build import build_leaderboard
    from unlearnbench.results import atomic_write_json

    board = build_leaderboard(args.results, title=args.title, root=args.root, allow_external_references=args.local,
                              separate=args.separate, base=Path(args.output).resolve().parent)
    path = atomic_write_json(args.output, board)
    n = sum(len(t["entries"]) for t in board["tasks"])
    print(f"wrote {path} ({len(board['tasks'])} task(s), {n} entr{'y' if n == 1 else 'ies'} "
          f"from {len(args.results)} result(s))")
    return 0


def cmd_render(args) -> int:
    from unlearnbench.leaderboard.build import load_leaderboard
    from unlearnbench.leaderboard.render import render_leaderboard
    from unlearnbench.results import atomic_write_text

    if args.format == "html" and args.output in (None, "-"):
        raise UserError("--format html needs -o FILE")
    board = load_leaderboard(args.leaderboard)
    if args.format == "html":
        from unlearnbench.leaderboard.html import render_html

        text = render_html(board, link_prefix(args.output, args.leaderboard))
    else:
        text = render_leaderboard(board, args.format)
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return 0
    path = atomic_write_text(args.output, text)
    print(f"wrote {path}")
    return 0


def cmd_evaluate_modules(args) -> int:
    from unlearnbench.hf_evaluate import export

    folders = export(args.output)
    print(f"wrote {len(folders)} evaluate module(s) under {args.output}: evaluate.load('{args.output}/<metric>')")
    return 0


def cmd_table(args) -> int:
    from unlearnbench.leaderboard.table import table_cli

    return table_cli(args)


def _checks_args(p) -> None:
    p.add_argument("--root", default=None,
                   help="submission folder paths must stay in (default: each result file's folder)")
    p.add_argument("--local", action="store_true",
                   help="accept absolute reference paths (results scored on this machine against a world's cache)")


def register(subparsers) -> None:
    lb = subparsers.add_parser("leaderboard", help="validate, verify, build and render leaderboards")
    sub = lb.add_subparsers(dest="leaderboard_command", metavar="ACTION")
    lb.set_defaults(func=lambda a: (lb.print_help(), 2)[1])

    p = sub.add_parser("validate", help="check result files: schema, known task/metrics, files and hashes")
    p.add_argument("files", nargs="+", metavar="RESULT.json")
    _checks_args(p)
    p.add_argument("--quiet", action="store_true", help="print problems only")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("verify", help="recompute every headline number from per-sample rows and references")
    p.add_argument("files", nargs="+", metavar="RESULT.json")
    _checks_args(p)
    p.add_argument("--allow-ingested", action="store_true",
                   help="accept ingested results that carry no per-sample values (unverified)")
    p.add_argument("--data", action="append", default=None, metavar="[DATASET=]DIR",
                   help="local copy of a real task's dataset to check data_sha256 against (as `score --data`; "
                        "default: the folders the result records, where they exist)")
    p.add_argument("--quiet", action="store_true", help="print problems only")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("build", help="group results over seeds and rank them per task")
    p.add_argument("results", nargs="+", metavar="RESULT.json")
    p.add_argument("-o", "--output", required=True, help="leaderboard JSON to write")
    p.add_argument("--title", default=None)
    p.add_argument("--separate", action="store_true",
                   help="keep results that are not comparable (other data, spec, scale, reference, template) as "
                        "separate tables / entries instead of refusing them")
    _checks_args(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("render", help="render a leaderboard JSON as Markdown, LaTeX, CSV or one HTML page")
    p.add_argument("leaderboard", metavar="LEADERBOARD.json")
    p.add_argument("--format", default="md", choices=["md", "latex", "csv", "html"])
    p.add_argument("-o", "--output", default=None, help="file to write (default: stdout; html needs a file)")
    p.set_defaults(func=cmd_render)

    p = subparsers.add_parser("evaluate-modules", help="write every metric as a Hugging Face evaluate module folder")
    p.add_argument("output", metavar="DIR", help="folder to write <metric>/<metric>.py into")
    p.set_defaults(func=cmd_evaluate_modules)

    p = subparsers.add_parser("table", help="regenerate a paper table from a spec (cells cached by spec hash)")
    p.add_argument("spec", metavar="SPEC.yaml")
    p.add_argument("--real", action="store_true", help="use the spec's real_tasks instead of its embedded-world tasks")
    p.add_argument("-o", "--output", default=None, help="output folder (default: runs/table-<spec name>)")
    p.add_argument("--format", default="md", choices=["md", "latex", "csv", "html"])
    p.add_argument("--list", action="store_true", help="list the cells with their keys and status; run nothing")
    p.add_argument("--cell", action="append", default=[], metavar="KEY",
                   help="run only the cell(s) whose key starts with KEY (repeatable), e.g. one job of a scheduler")
    p.add_argument("--no-run", action="store_true", help="only assemble the table from cells already done")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    _executor_args(p)
    p.set_defaults(func=cmd_table)


def _executor_args(p) -> None:
    """Where the cells run (unlearnbench.leaderboard.executors)."""
    from unlearnbench.preflight import parse_positive_int

    g = p.add_argument_group("executors")
    g.add_argument("--executor", default="local", choices=["local", "ray", "slurm"],
                   help="local processes (default), Ray tasks, or a Slurm job array (submitit)")
    g.add_argument("--jobs", type=parse_positive_int, default=1,
                   help="local: cells run side by side in this many processes (default 1)")
    g.add_argument("--cpus-per-cell", type=float, default=1, help="ray / slurm: CPUs each cell asks for (default 1)")
    g.add_argument("--gpus-per-cell", type=float, default=0, help="ray / slurm: GPUs each cell asks for (default 0)")
    g.add_argument("--slurm-partition", default=None, help="slurm: partition to submit to")
    g.add_argument("--slurm-time", type=parse_positive_int, default=None, help="slurm: time limit per cell, minutes")
    g.add_argument("--slurm-cluster", default=None, choices=["slurm", "local", "debug"],
                   help="slurm: submitit's cluster (local / debug run the job array on this machine)")
