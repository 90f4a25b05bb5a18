"""Parity with TOFU's published eval logs and with TOFU's aggregation formulas for any logs."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import hmean, ks_2samp

from unlearnbench.cli import main
from conftest import FIXTURES

LEGACY = FIXTURES / "tofu-legacy"
pytestmark = pytest.mark.skipif(not LEGACY.exists(), reason="shared/fixtures not beside the checkout")

KEYS = {
    "ROUGE Real Authors": "real_authors/rouge_l_recall", "Prob. Real Authors": "real_authors/probability",
    "Truth Ratio Real Authors": "real_authors/truth_ratio", "ROUGE Real World": "world_facts/rouge_l_recall",
    "Prob. Real World": "world_facts/probability", "Truth Ratio Real World": "world_facts/truth_ratio",
    "ROUGE Retain": "retain/rouge_l_recall", "Prob. Retain": "retain/probability",
    "Truth Ratio Retain": "retain/truth_ratio", "ROUGE Forget": "forget/rouge_l_recall",
    "Prob. Forget": "forget/probability", "Truth Ratio Forget": "forget/truth_ratio",
    "Model Utility": "model_utility", "Forget Quality": "forget_quality",
}


def tofu_reference_formulas(model: dict, retain: dict) -> dict:
    """An independent transcription of locuslab/tofu aggregate_eval_stat.py's formulas."""
    names = {"eval_real_author_wo_options.json": "Real Authors", "eval_real_world_wo_options.json": "Real World",
             "eval_log.json": "Retain", "eval_log_forget.json": "Forget"}
    out = {}
    for k, label in names.items():
        d = model[k]
        vals = lambda m: np.array(list(d[m].values()))  # noqa: E731
        if label in ("Retain", "Forget"):
            prob = np.exp(-vals("avg_gt_loss")).mean()
        else:
            t = np.exp(-vals("avg_gt_loss"))
            f = np.exp(-np.array(list(d["average_perturb_loss"].values())))
            prob = np.mean(t / np.concatenate([t[:, None], f], axis=1).sum(-1))
        stat = np.exp(np.array(list(d["average_perturb_loss"].values())).mean(-1) - vals("avg_paraphrased_loss"))
        tr = np.mean(np.minimum(stat, 1 / stat)) if label == "Forget" else np.mean(np.maximum(0, 1 - 1 / stat))
        out[f"Prob. {label}"], out[f"ROUGE {label}"], out[f"Truth Ratio {label}"] = prob, vals("rougeL_recall").mean(), tr
    out["Model Utility"] = hmean([out[f"{m} {s}"] for s in ("Retain", "Real Authors", "Real World")
                                  for m in ("ROUGE", "Prob.", "Truth Ratio")])

    def fstat(d):
        d = d["eval_log_forget.json"]
        return np.exp(np.array(list(d["average_perturb_loss"].values())).mean(-1)
                      - np.array(list(d["avg_paraphrased_loss"].values())))

    out["Forget Quality"] = ks_2samp(fstat(model), fstat(retain)).pvalue
    return out


def _ingest(tmp_path, fmt, model, retain, name="out.json"):
    out = tmp_path / name
    rc = main(["ingest", fmt, "--model-logs", str(model), "--retain-logs", str(retain), "-o", str(out)])
    assert rc == 0
    return json.loads(out.read_text())


def test_legacy_ingest_reproduces_published_expected_values(tmp_path):
    exp = json.loads((LEGACY / "expected.json").read_text())["expected"]
    res = _ingest(tmp_path, "tofu-legacy", LEGACY / "phi_full.json", LEGACY / "phi_retain90.json")
    for label, key in KEYS.items():
        assert res["metrics"][key]["value"] == pytest.approx(exp[label], rel=1e-9), label
    assert res["metrics"]["forget_quality"]["ks_statistic"] == pytest.approx(exp["KS Test Forget"], rel=1e-9)
    assert res["task"]["name"] == "tofu/forget10"
    ref = res["references"][0]
    assert (tmp_path / ref["path"]).exists() and len(ref["sha256"]) == 64
    assert (tmp_path / res["per_sample"]["path"]).exists()


def test_legacy_ingest_matches_tofu_formulas_for_other_models(tmp_path):
    # the retain90 model scored against the fully fine-tuned one: not the fixture's pairing
    model, retain = json.loads((LEGACY / "phi_retain90.json").read_text()), json.loads((LEGACY / "phi_full.json").read_text())
    exp = tofu_reference_formulas(model, retain)
    res = _ingest(tmp_path, "tofu-legacy", LEGACY / "phi_retain90.json", LEGACY / "phi_full.json")
    for label, key in KEYS.items():
        assert res["metrics"][key]["value"] == pytest.approx(exp[label], rel=1e-9), label
    # and a perturbed copy of the logs (a third 'model') moves every number the same way
    rng = np.random.default_rng(0)
    for split in model.values():
        for idx in split["avg_gt_loss"]:
            split["avg_gt_loss"][idx] *= float(rng.uniform(0.5, 2))
            split["avg_paraphrased_loss"][idx] *= float(rng.uniform(0.5, 2))
    f = tmp_path / "third.json"
    f.write_text(json.dumps(model))
    exp3 = tofu_reference_formulas(model, retain)
    res3 = _ingest(tmp_path, "tofu-legacy", f, LEGACY / "phi_full.json", "third_out.json")
    for label, key in KEYS.items():
        assert res3["metrics"][key]["value"] == pytest.approx(exp3[label], rel=1e-9), label


def _to_open_unlearning(legacy: dict) -> dict:
    """Rewrite legacy logs in open-unlearning's TOFU_EVAL.json layout."""
    out = {}
    for key, prefix in (("eval_log_forget.json", "forget"), ("eval_log.json", "retain"),
                        ("eval_real_author_wo_options.json", "ra"), ("eval_real_world_wo_options.json", "wf")):
        d = legacy[key]
        idx = list(d["avg_gt_loss"])
        vbi = lambda f: {i: f(i) for i in idx}  # noqa: E731
        out[f"{prefix}_Q_A_Prob"] = {"agg_value": 0.0, "value_by_index": vbi(lambda i: {"prob": 0.0, "avg_loss": d["avg_gt_loss"][i]})}
        out[f"{prefix}_Q_A_PERT_Prob"] = {"agg_value": 0.0, "value_by_index": vbi(lambda i: {"prob": [], "avg_loss": d["average_perturb_loss"][i]})}
        # legacy logs score real-authors/world-facts "paraphrases" (the answer itself) in a separate pass
        out[f"{prefix}_Q_A_PARA_Prob"] = {"agg_value": 0.0, "value_by_index": vbi(lambda i: {"prob": 0.0, "avg_loss": d["avg_paraphrased_loss"][i]})}
        out[f"{prefix}_Q_A_ROUGE"] = {"agg_value": 0.0, "value_by_index": vbi(lambda i: {"rougeL_recall": d["rougeL_recall"][i]})}
    return out


def test_open_unlearning_format_gives_the_same_numbers(tmp_path):
    exp = json.loads((LEGACY / "expected.json").read_text())["expected"]
    for name in ("phi_full", "phi_retain90"):
        (tmp_path / f"{name}_ou.json").write_text(json.dumps(_to_open_unlearning(json.loads((LEGACY / f"{name}.json").read_text()))))
    res = _ingest(tmp_path, "open-unlearning", tmp_path / "phi_full_ou.json", tmp_path / "phi_retain90_ou.json")
    for label, key in KEYS.items():
        assert res["metrics"][key]["value"] == pytest.approx(exp[label], rel=1e-9), label


@pytest.mark.parametrize("case", ["missing", "not_json", "wrong_format", "bad_suffix"])
def test_ingest_bad_inputs_exit_2_with_one_line(tmp_path, capsys, case):
    model = LEGACY / "phi_full.json"
    out = tmp_path / "o.json"
    if case == "missing":
        model = tmp_path / "nope.json"
    elif case == "not_json":
        model = tmp_path / "x.json"
        model.write_text("{not json")
    elif case == "wrong_format":
        model = tmp_path / "x.json"
        model.write_text(json.dumps({"hello": 1}))
    elif case == "bad_suffix":
        out = tmp_path / "o.txt"
    rc = main(["ingest", "tofu-legacy", "--model-logs", str(model), "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("unlearnbench: error:") and "\n" not in err
    assert not out.exists() and not list(tmp_path.glob("o.*"))
