"""CLI commands of the robustness battery: ``unlearnbench attacks`` and ``unlearnbench attack``.

``attack TASK CHECKPOINT --attacks relearn,quantize,prompt`` scores the checkpoint plainly
(the usual result file), runs each attack on a copy of the model, adds the ``robustness``
block (per-attack forget metrics and the worst case per metric) to the result file, and
prints a comparison table. Plugged into the parser through ``cli._PLUGINS``.
"""

from __future__ import annotations

import json
from pathlib import Path

from unlearnbench.threads import thread_policy


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
    from unlearnbench.registry import ATTACKS, WORLDS
    from unlearnbench.runner import get_task, load_model, score

    task = get_task(args.task)
    names = _parse_names(args.attacks or _default_attacks(task.modality))
    for n in names:
        modality = ATTACKS.meta(n).get("modality")
        if modality != task.modality:
            raise UserError(f"attack {n!r} is for {modality} tasks; {task.name} is a {task.modality} task")
    if task.modality != "llm":
        return _attack_generic(args, task, names)
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
    with thread_policy(scored.model):
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


def _default_attacks(modality: str) -> str:
    import unlearnbench.attacks  # noqa: F401  (registers the LLM attacks)
    from unlearnbench.catalog import load_all
    from unlearnbench.registry import ATTACKS

    load_all()
    return ",".join(n for n, meta in ATTACKS.items() if meta.get("modality") == modality)


def _attack_generic(args, task, names: list[str]) -> int:
    """Attacks of other modalities (UnlearnDiffAtk for diffusion): ``fn(task, model, progress)``
    returns ``{"rows", "metrics", "config"}``; its metrics go into the result's robustness block."""
    from unlearnbench.display import print_comparison
    from unlearnbench.registry import ATTACKS
    from unlearnbench.results import atomic_write_json
    from unlearnbench.runner import score

    opts = {k: getattr(args, k) for k in ("batch_size", "device", "dtype") if getattr(args, k, None) is not None}
    progress = not args.quiet
    scored = score(args.task, args.checkpoint, reference=args.reference, out_dir=args.output, seed=args.seed,
                   label=args.label, progress=progress, **opts)
    attacks, details, worst = {}, {}, {}
    for name in names:
        with thread_policy(scored.model):
            out = ATTACKS.get(name)(task, scored.model, progress=progress)
        attacks[name] = {k: v["value"] for k, v in out["metrics"].items()}
        details[name] = {"config": out.get("config"), "rows": out.get("rows")}
        for k, v in out["metrics"].items():
            better_low = not v["higher_is_better"]  # worst case: the attack that succeeds most
            if v["value"] is not None and (k not in worst or (v["value"] > worst[k]["value"]) == better_low):
                worst[k] = {"value": v["value"], "attack": name}
    result = dict(scored.result)
    result["robustness"] = {"schema": "unlearnbench/robustness/v1", "attacks": attacks, "worst_case": worst,
                            "details": details}
    if scored.path is not None:
        atomic_write_json(scored.path, result)
    cols = sorted({k for a in attacks.values() for k in a})
    print_comparison(f"{task.name} — attacks on {result['label']}", cols,
                     [{"label": n, **a} for n, a in attacks.items()])
    if args.json:
        print(json.dumps({"attacks": attacks, "worst_case": worst}, indent=2))
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

    p = sub.add_parser("attack", help="score a checkpoint plainly and under attacks (LLM battery; UnlearnDiffAtk for diffusion)")
    p.add_argument("task")
    p.add_argument("checkpoint", help="model folder, hub id, GGUF file, or world:target / world:retain")
    p.add_argument("--attacks", default=None,
                   help="comma-separated attack names (default: every attack of the task's modality: "
                        "relearn,quantize,prompt for LLMs, unlearndiffatk for diffusion)")
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
