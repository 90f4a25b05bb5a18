"""Command-line interface: a thin layer over the Python API.

Every user mistake raises :class:`UserError`, printed as one line on stderr with exit code 2.
Commands from other folders (leaderboard, table, attacks) plug in through ``_PLUGINS``:
each names a function that adds its sub-commands to the parser.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import os
import sys

from unlearnbench import __version__
from unlearnbench.errors import UserError
from unlearnbench.preflight import parse_batch_size, parse_seed

# "module:function" entries; each function(subparsers) adds commands. Missing modules are skipped.
_PLUGINS = (
    "unlearnbench.leaderboard.commands:register",
    "unlearnbench.attack_commands:register",
    "unlearnbench.world_artefacts:register",
)


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes are one :class:`UserError` line (exit 2), naming the help to read."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see `{self.prog} --help`)")


# -- listings ---------------------------------------------------------------------------
def _listing(registry_name: str, as_json: bool) -> int:
    from unlearnbench import registry
    from unlearnbench.catalog import load_all

    load_all()
    reg = getattr(registry, registry_name)
    rows = [{"name": name, **meta} for name, meta in reg.items()]
    if registry_name == "TASKS":
        _add_profiles(reg, rows)
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        from unlearnbench.display import print_listing

        print_listing(reg.kind + "s", rows)
        if registry_name == "TASKS":
            from unlearnbench.display import print_profiles
            from unlearnbench.profiles import PROFILES

            print_profiles(PROFILES.values())
    return 0


def _add_profiles(reg, rows: list[dict]) -> None:
    """Each task row gets the scoring profiles that apply to it."""
    from unlearnbench.profiles import profiles_for
    from unlearnbench.spec import TaskSpec

    for r in rows:
        entry = reg._entries.get(r["name"])
        if isinstance(entry, TaskSpec):
            r["profiles"] = profiles_for(entry)


# -- scoring ----------------------------------------------------------------------------
def _model_opts(args) -> dict:
    opts = {}
    for key in ("batch_size", "device", "dtype", "template"):
        val = getattr(args, key, None)
        if val is not None:
            opts[key] = val
    return opts


def _scoring_opts(args) -> dict:
    """``--profile``, ``--system-prompt``, ``--max-new-tokens``, ``--limit`` and ``--data``."""
    return {"options": {"profile": args.profile, "system_prompt": args.system_prompt,
                        "max_new_tokens": args.max_new_tokens, "limit": args.limit}, "data": args.data}


def cmd_score(args) -> int:
    from unlearnbench.display import print_result
    from unlearnbench.runner import score

    scored = score(args.task, args.checkpoint, reference=args.reference, out_dir=args.output, seed=args.seed,
                   label=args.label, progress=not args.quiet, overwrite=args.overwrite,
                   save_images=getattr(args, "save_images", False), **_scoring_opts(args), **_model_opts(args))
    from unlearnbench import distributed

    if not distributed.is_main():  # under accelerate launch, the main process reports
        return 0
    print_result(scored.result)
    if scored.path:
        print(f"wrote {scored.path}")
    else:
        print("nothing was saved: pass -o DIR to write the result file, its per-sample values and its log",
              file=sys.stderr)
    return 0


def cmd_reference_build(args) -> int:
    from unlearnbench.runner import build_reference

    from unlearnbench import distributed

    info = build_reference(args.task, args.checkpoint, args.output, seed=args.seed or 0, progress=not args.quiet,
                           role=args.role, overwrite=args.overwrite, **_scoring_opts(args), **_model_opts(args))
    if distributed.is_main():
        print(f"wrote {info['path']} (sha256 {info['sha256']})")
    return 0


def cmd_ingest(args) -> int:
    from unlearnbench.catalog import load_all
    from unlearnbench.display import print_result
    from unlearnbench.preflight import check_output_file
    from unlearnbench.registry import INGESTERS

    load_all()
    ingester = INGESTERS.get(args.format)
    check_output_file(args.output, args.overwrite, "result file")
    path = ingester(args)
    from unlearnbench.results import load_result

    print_result(load_result(path))
    print(f"wrote {path}")
    return 0


def cmd_unlearn(args) -> int:
    from unlearnbench.unlearning import unlearn_cli

    return unlearn_cli(args, score_after=False)


def cmd_run(args) -> int:
    from unlearnbench.unlearning import unlearn_cli

    return unlearn_cli(args, score_after=True)


def cmd_demo(args) -> int:
    from unlearnbench.demo import run_demo

    return run_demo(scale=args.scale, out_dir=args.output, methods=args.methods, progress=not args.quiet)


# -- parser -----------------------------------------------------------------------------
def _add_model_args(p: argparse.ArgumentParser, seed_default: int | None = 0) -> None:
    p.add_argument("--batch-size", type=parse_batch_size, default=None,
                   help="inference batch size, a positive integer or 'auto' (halves itself on out-of-memory)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                   help="default float32 on CPU, bfloat16 on GPU")
    p.add_argument("--template", default=None, help="prompt template for LLM tasks (default: the task's, else auto)")
    p.add_argument("--seed", type=parse_seed, default=seed_default,
                   help="0 .. 2**32-1" + (" (default: the checkpoint's unlearning seed, else 0)" if seed_default is None
                                          else f" (default {seed_default})"))
    p.add_argument("--quiet", action="store_true", help="no progress bars (the libraries' loading bars included)")
    p.add_argument("--overwrite", action="store_true", help="replace existing result, checkpoint or reference files")


def _add_scoring_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None,
                   help="scoring profile: default, open-unlearning, tofu (see `unlearnbench tasks`)")
    p.add_argument("--data", action="append", default=None, metavar="[DATASET=]DIR",
                   help="read the task's dataset (or DATASET) from a local copy in the hub layout (repeatable)")
    p.add_argument("--system-prompt", default=None, help="system prompt of the chat template (LLM QA tasks)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="generation length (LLM tasks that generate)")
    p.add_argument("--limit", type=int, default=None,
                   help="score only the first N samples of each split (quick looks; leaderboards refuse it)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="unlearnbench", description="Score machine unlearning, reproducibly.")
    parser.add_argument("--version", action="version", version=f"unlearnbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for name, reg, help_ in (("tasks", "TASKS", "list tasks"), ("metrics", "METRICS", "list metrics"),
                             ("methods", "METHODS", "list unlearning methods")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--json", action="store_true", help="print a JSON list")
        p.set_defaults(func=lambda a, r=reg: _listing(r, a.json))

    p = sub.add_parser("score", help="score a checkpoint on a task")
    p.add_argument("task")
    p.add_argument("checkpoint", help="model folder, hub id, GGUF/safetensors file, or world:target / world:retain")
    p.add_argument("--reference", default=None, help="reference artefact from `unlearnbench reference build`")
    p.add_argument("-o", "--output", default=None, help="folder for the result JSON + per-sample values")
    p.set_defaults(output_kind="dir")
    p.add_argument("--label", default=None, help="name of this entry in tables and leaderboards "
                   "(default: the method of an unlearned checkpoint, else the world role or file name)")
    p.add_argument("--save-images", action="store_true",
                   help="diffusion: keep every generated image as PNG in <result stem>.images/ beside the result "
                        "(a contact sheet of all of them is always written)")
    _add_model_args(p, seed_default=None)
    _add_scoring_args(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("reference", help="build reference artefacts")
    rsub = p.add_subparsers(dest="reference_command", metavar="ACTION")
    rb = rsub.add_parser("build", help="write a reference model's per-sample statistics")
    rb.add_argument("task")
    rb.add_argument("checkpoint")
    rb.add_argument("-o", "--output", required=True, help="reference JSON file to write")
    rb.set_defaults(output_kind="file")
    rb.add_argument("--role", default=None, help="the reference's role (default: the one the task uses)")
    _add_model_args(rb)
    _add_scoring_args(rb)
    rb.set_defaults(func=cmd_reference_build)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    p = sub.add_parser("ingest", help="import results of other tools as result v1 files")
    p.add_argument("format", help="tofu-legacy or open-unlearning")
    p.add_argument("--model-logs", required=True, help="the scored model's logs")
    p.add_argument("--retain-logs", default=None, help="the retain model's logs (for forget quality)")
    p.add_argument("--task", default=None, help="task name to record (default: guessed from the logs)")
    p.add_argument("--label", default=None)
    p.add_argument("-o", "--output", required=True, help="result JSON file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing result file")
    p.set_defaults(output_kind="file")
    p.set_defaults(func=cmd_ingest)

    for name, func, help_ in (("unlearn", cmd_unlearn, "unlearn a model on a task's forget set"),
                              ("run", cmd_run, "unlearn, then score")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("task")
        p.add_argument("--method", required=True)
        p.add_argument("--model", default="world:target", help="model to unlearn (default: the world's target)")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a method config field (repeatable)")
        p.add_argument("-o", "--output", default=None,
                       help="output folder (default runs/): the checkpoint goes to <task>__<label>__s<seed>.checkpoint "
                            "in it, beside the result files")
        p.set_defaults(output_kind="dir")
        p.add_argument("--reference", default=None, help="reference artefact (run: default is the world's retain model)")
        p.add_argument("--label", default=None)
        _add_model_args(p)
        p.set_defaults(func=func)

    p = sub.add_parser("demo", help="the quick default: mini-tofu/forget10 with target, retain, ga, npo, simnpo")
    p.add_argument("--scale", default="default", choices=["test", "default"])
    p.add_argument("-o", "--output", default=None, help="folder for the results (default: $UNLEARNBENCH_HOME/demo)")
    p.set_defaults(output_kind="dir")
    p.add_argument("--methods", default="ga,npo,simnpo")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)

    for spec in _PLUGINS:
        module, fn = spec.split(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):
                continue
            raise
        getattr(mod, fn)(sub)
    return parser


#: what ``-o`` names for commands whose parsers live in plug-ins (handler name -> "dir" | "file")
_PLUGIN_OUTPUTS = {"cmd_table": "dir", "cmd_attack": "dir", "cmd_build": "file", "cmd_render": "file"}
#: file-system conditions that are the user's to fix, reported in one line wherever they happen
_PATH_ERRNOS = (errno.ENOENT, errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS,
                errno.ENOSPC, errno.EDQUOT)


def _check_output(args) -> None:
    """``-o`` can be written (a folder, or a file's folder), checked before the command runs."""
    from unlearnbench.preflight import check_output_dir, check_output_file

    out = getattr(args, "output", None)
    if out in (None, "-"):
        return
    kind = getattr(args, "output_kind", None) or _PLUGIN_OUTPUTS.get(getattr(args.func, "__name__", ""))
    if kind == "dir":
        check_output_dir(out)
    elif kind == "file":
        check_output_file(out, overwrite=True)  # replacing an existing file is each command's decision


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        from unlearnbench.progress import quiet_scope
        from unlearnbench.run_log import run_log
        from unlearnbench.threads import env_threads

        env_threads()  # a bad $UNLEARNBENCH_THREADS fails before any work
        _check_output(args)
        with quiet_scope(getattr(args, "quiet", False)), run_log(argv):
            return int(args.func(args) or 0)
    except UserError as e:
        print(f"unlearnbench: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        if e.errno not in _PATH_ERRNOS:
            raise
        print(f"unlearnbench: error: {e.strerror}: {e.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("unlearnbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
