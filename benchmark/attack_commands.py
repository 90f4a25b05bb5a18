"""CLI commands of the robustness battery: ``unlearnbench attacks`` and ``unlearnbench attack``.

``attack TASK CHECKPOINT --attacks relearn,quantize,prompt`` scores the checkpoint plainly
(the usual result file), runs each attack on a copy of the model, adds the ``robustness``
block (per-attack forget metrics and the worst case per metric) to the result file, and
prints a comparison table. Plugged into the parser through ``cli._PLUGINS``.
"""

from __future__ import annotations

import json
from pathlib import Path


def cmd_attacks(args) -> int:
    import unlearnbench.attacks  # noqa: F401  (registers the attacks)
    from unlearnbench.cli import _listing

    return _listing("ATTACKS", args.json)


def _parse_names(text: str) -> list[str]:
    from unlearnbench.errors import UserError
    from unlearnbench.registry import ATTACKS

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError("--attacks needs at least one name (relearn, quantize, prompt)")
    for n in names:
        ATTACKS.get(n)  # "did you mean" on typos
    if len(set(names)) != len(names):
        raise UserError(f"--attacks names an attack twice: {text}")
    return names


def cmd_attack(args) -> int:
    from unlearnbench import attacks as A
    from unlearnbench.display import print_comparison
    from unlearnbench.errors import UserError
    from unlearnbench.reference import load_reference
    from unlearnbench.registry import WORLDS
    from unlearnbench.runner import get_task, load_model, score

    names = _parse_names(args.attacks)
    task = get_task(args.task)
    if task.modality != "llm":
        raise UserError(f"the robustness battery is for LLM tasks; {task.name} is a {task.modality} task")
    reference = args.reference
    if reference is None and task.world:
        reference = WORLDS.get(task.world).reference(task)
    if reference is not None and not Path(reference).exists():
        raise UserError(f"reference file not found: {reference}")
    bits = tuple(int(b) for b in args.bits.split(",")) if args.bits else (8, 4)
    variants = tuple(v.strip() for v in args.variants.split(",")) if args.variants else A.PROMPT_VARIANTS
    for v in variants:
        if v not in A.PROMPT_VARIANTS:
            raise UserError(f"unknown prompt variant {v!r}; variants: {', '.join(A.PROMPT_VARIANTS)}")
    opts = {k: getattr(args, k) for k in ("batch_size", "device", "dtype", "template") if getattr(args, k, None) is not None}
    progress = not args.quiet
    scored = score(args.task, args.checkpoint, reference=reference, out_dir=args.output, seed=args.seed,
                   label=args.label, progress=progress, **opts)
    payload = load_reference(reference, task)[0] if reference is not None else None
    ref_model = None
    if "prompt" in names and task.world and args.reference is None:
        ref_model = load_model(task, "world:retain", **opts)  # forget quality on the rewritten questions
    relearn = A.RelearnConfig(fraction=args.relearn_fraction, epochs=args.relearn_epochs, lr=args.relearn_lr,
                              seed=args.seed)
    outcomes = A.run_attacks(task, scored.model, names, reference=payload, plain_rows=scored.rows,
                             reference_model=ref_model, seed=args.seed, relearn=relearn, bits=bits,
                             group_size=args.group_size, variants=variants, progress=progress)
    result = A.add_robustness(scored.result, outcomes)
    if scored.path is not None:
        A.write_robustness(scored.path, scored.result, outcomes)
    rob = result["robustness"]
    cols = [m for m in A.REPORTED if any(m in r for r in rob["attacks"].values())]
    print_comparison(f"{task.name} — robustness of {result['label']}", cols, A.comparison_rows(rob))
    if "relearn" in rob["details"]:
        rec = rob["details"]["relearn"]["recovery"]
        print("relearn recovery (after − before, held-back questions): "
              + ", ".join(f"{k} {v:+.4f}" for k, v in rec.items()))
    if args.json:
        print(json.dumps(rob, indent=2))
    if scored.path:
        print(f"wrote {scored.path}")
    return 0


def register(sub) -> None:
    from unlearnbench.attacks import RelearnConfig
    from unlearnbench.cli import _add_model_args

    d = RelearnConfig()
    p = sub.add_parser("attacks", help="list robustness attacks")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_attacks)

    p = sub.add_parser("attack", help="score a checkpoint plainly and under robustness attacks (LLM tasks)")
    p.add_argument("task")
    p.add_argument("checkpoint", help="model folder, hub id, GGUF file, or world:target / world:retain")
    p.add_argument("--attacks", default="relearn,quantize,prompt", help="comma-separated attack names")
    p.add_argument("--reference", default=None, help="reference artefact (default: the world's retain model)")
    p.add_argument("-o", "--output", default=None, help="folder for the result JSON (with the robustness block)")
    p.add_argument("--label", default=None)
    p.add_argument("--bits", default="8,4", help="quantize: bit widths (default 8,4)")
    p.add_argument("--group-size", type=int, default=128, help="quantize: group size (default 128)")
    p.add_argument("--variants", default=None, help="prompt: paraphrase,indirect,step_by_step (default all)")
    p.add_argument("--relearn-fraction", type=float, default=d.fraction, help="relearn: share of forget questions relearned")
    p.add_argument("--relearn-epochs", type=int, default=d.epochs)
    p.add_argument("--relearn-lr", type=float, default=d.lr, help="relearn: lr (1e-5 for 7B models)")
    p.add_argument("--json", action="store_true", help="also print the robustness block as JSON")
    _add_model_args(p)
    p.set_defaults(func=cmd_attack)
