"""SOUL: the SophiaG update rule by hand, the Hessian estimators, and runs on the shared loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unlearnbench.baselines.soul import gnb_estimate, hutchinson_estimate
from unlearnbench.baselines.soul_optimizer import SophiaG


def test_sophia_update_by_hand():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = SophiaG([p], lr=0.1, betas=(0.5, 0.5), rho=0.5, weight_decay=0.1)
    opt.update_hessian({p: torch.tensor([4.0, 0.02])})  # h = 0.5 * [4, 0.02] = [2, 0.01]
    p.grad = torch.tensor([0.8, -0.4])
    opt.step()
    # decay: [0.99, -1.98]; m = [0.4, -0.2]; rho*h = [1, 0.005]; ratio = [0.4, min(40, 1)]
    assert p.detach().tolist() == pytest.approx([0.95, -1.88], abs=1e-7)
    p.grad = torch.tensor([0.0, 0.2])
    opt.step()  # decay: [0.9405, -1.8612]; m = [0.2, 0.0]; ratio = [0.2, 0]
    assert p.detach().tolist() == pytest.approx([0.9205, -1.8612], abs=1e-7)
    assert opt.state[p]["step"] == 2


def test_sophia_without_curvature_is_sign_descent():
    p = torch.nn.Parameter(torch.tensor([0.5, 0.5, 0.5]))
    opt = SophiaG([p], lr=0.01, betas=(0.9, 0.95), rho=0.04, weight_decay=0.0)
    p.grad = torch.tensor([1e-6, -3.0, 0.0])
    opt.step()  # h = 0 -> |m|/eps >> 1 -> clipped to a step of lr in the direction of -sign(m)
    assert p.detach().tolist() == pytest.approx([0.49, 0.51, 0.5], abs=1e-7)


def test_hutchinson_on_quadratic():
    a = torch.tensor([1.0, 2.0, 3.0])
    theta = torch.nn.Parameter(torch.tensor([0.3, -0.1, 2.0]))
    loss = 0.5 * (a * theta**2).sum() + theta.sum()
    est = hutchinson_estimate(loss, [theta], torch.Generator().manual_seed(0))[theta]
    u = torch.randn(3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(est, u * a * u)  # u ⊙ (H u) with H = diag(a)


class _Bigram(torch.nn.Module):
    """logits[t] = E[input_ids[t]]: a model whose CE gradient is easy to write by hand."""

    def __init__(self, table):
        super().__init__()
        self.E = torch.nn.Parameter(torch.tensor(table))

    def forward(self, input_ids, attention_mask=None):
        return type("Out", (), {"logits": self.E[input_ids]})()


def test_gnb_estimate_by_hand():
    table = [[0.0, 1.0, -1.0], [2.0, 0.0, 0.5], [0.1, 0.2, 0.3]]
    model = _Bigram(table)
    part = {"input_ids": torch.tensor([[0, 1, 2]]), "attention_mask": torch.ones(1, 3, dtype=torch.long),
            "labels": torch.tensor([[-100, 1, 2]])}
    est = gnb_estimate(model, [part], [model.E], torch.Generator().manual_seed(3))[model.E]
    # answer positions predict from tokens 0 and 1; labels sampled from the model's own softmax
    t = np.array(table)
    probs = np.exp(t[[0, 1]]) / np.exp(t[[0, 1]]).sum(-1, keepdims=True)
    y = torch.multinomial(torch.softmax(torch.tensor(table)[[0, 1]], -1), 1,
                          generator=torch.Generator().manual_seed(3)).squeeze(-1).numpy()
    g = np.zeros((3, 3))
    for row, (p, yy) in enumerate(zip(probs, y)):
        g[row] = (p - np.eye(3)[yy]) / 2  # d mean-CE / d logits, B = 2 tokens
    np.testing.assert_allclose(est.detach().numpy(), 2 * g * g, rtol=1e-5, atol=1e-8)


def _train(tofu_task, lm_dir, method, overrides):
    from unlearnbench.causal_lm import CausalLM
    from unlearnbench.runner import get_protocol
    from unlearnbench.unlearning import get_method, make_config

    lm = CausalLM.load(str(lm_dir), device="cpu")
    m = get_method(method, "llm")
    cfg = make_config(m, overrides)
    data = get_protocol(tofu_task).training_data(tofu_task)
    return lm, m.unlearn(lm, tofu_task, cfg, data=data, progress=False), cfg


@pytest.mark.parametrize("loss", ["ga", "graddiff", "npo"])
def test_soul_runs_each_loss(tofu_fixture_task, tiny_lm_dir, loss):
    lm, out, cfg = _train(tofu_fixture_task, tiny_lm_dir, "soul",
                          {"loss": loss, "max_steps": "3", "batch_size": "2", "seed": "0", "lr": "1e-3"})
    assert out.sophia_steps == 3
    assert cfg.epochs is not None and cfg.weight_decay is not None  # resolved from the wrapped method
    assert all(torch.isfinite(v).all() for v in out.model.state_dict().values())


def test_soul_is_not_adamw_and_is_deterministic(tofu_fixture_task, tiny_lm_dir):
    from unlearnbench.causal_lm import CausalLM

    start = CausalLM.load(str(tiny_lm_dir), device="cpu").model.state_dict()
    ov = {"loss": "ga", "max_steps": "4", "batch_size": "2", "seed": "1", "lr": "1e-3", "hessian_interval": "2"}
    _, a, _ = _train(tofu_fixture_task, tiny_lm_dir, "soul", ov)
    _, b, _ = _train(tofu_fixture_task, tiny_lm_dir, "soul", ov)
    _, c, _ = _train(tofu_fixture_task, tiny_lm_dir, "ga", {"max_steps": "4", "batch_size": "2", "seed": "1", "lr": "1e-3"})
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    moved = [k for k in sa if not torch.equal(sa[k], start[k])]
    assert moved
    assert any(not torch.allclose(sa[k], sc[k]) for k in moved)
    # a clipped Sophia step moves no element by more than lr (plus weight decay) per step
    k = "model.layers.0.mlp.up_proj.weight"
    assert float((sa[k] - start[k]).abs().max()) <= 4 * 1e-3 * (1 + 1e-6) + float(start[k].abs().max()) * 4 * 1e-3 * 0.01 + 1e-7


def test_soul_user_errors(tofu_fixture_task, tiny_lm_dir):
    from unlearnbench.errors import UserError

    with pytest.raises(UserError):
        _train(tofu_fixture_task, tiny_lm_dir, "soul", {"loss": "wagle", "max_steps": "1"})
    with pytest.raises(UserError):
        _train(tofu_fixture_task, tiny_lm_dir, "soul", {"loss": "ga", "estimator": "bfgs", "max_steps": "1"})
    with pytest.raises(UserError):
        _train(tofu_fixture_task, tiny_lm_dir, "soul", {"loss": "npo", "loss_config": '{"betta": 0.1}'})


def test_soul_hutchinson_runs(tofu_fixture_task, tiny_lm_dir):
    _, out, _ = _train(tofu_fixture_task, tiny_lm_dir, "soul",
                       {"loss": "ga", "estimator": "hutchinson", "max_steps": "2", "batch_size": "2", "seed": "0"})
    assert out.sophia_steps == 2
