"""WAGLE: the attribution score and mask by hand, bit-identical frozen weights under weight decay."""

from __future__ import annotations

import pytest
import torch

from unlearnbench.baselines.wagle import frozen_outside, top_mask, wagle_scores
from unlearnbench.errors import UserError


def test_scores_and_mask_by_hand():
    params = {"a": torch.tensor([1.0, -2.0, 0.5]), "b": torch.tensor([[3.0], [0.0]])}
    g_f = {"a": torch.tensor([0.1, 0.2, -1.0]), "b": torch.tensor([[0.0], [2.0]])}
    g_r = {"a": torch.tensor([0.0, 0.4, 0.5]), "b": torch.tensor([[1.0], [-1.0]])}
    s = wagle_scores(params, g_f, g_r, gamma=0.5)
    # |(θ - g_r/γ) g_f|: a: |1*.1|, |(-2-.8)*.2|, |(.5-1)*-1| ; b: |(3-2)*0|, |(0+2)*2|
    assert s["a"].tolist() == pytest.approx([0.1, 0.56, 0.5])
    assert s["b"].flatten().tolist() == pytest.approx([0.0, 4.0])
    m = top_mask(s, 0.6)  # 5 weights -> top 3: 4.0 (b[1]), 0.56 (a[1]), 0.5 (a[2])
    assert m["a"].tolist() == [False, True, True]
    assert m["b"].tolist() == [[False], [True]]
    with pytest.raises(UserError):
        top_mask(s, 0.0)
    with pytest.raises(UserError):
        wagle_scores(params, g_f, g_r, gamma=0.0)


def test_frozen_outside_with_adamw_weight_decay():
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 3)
    start = {n: p.detach().clone() for n, p in lin.named_parameters()}
    mask = {"weight": torch.rand(3, 4) > 0.5, "bias": torch.tensor([True, False, True])}
    opt = torch.optim.AdamW(lin.parameters(), lr=0.1, weight_decay=0.5)
    with frozen_outside(lin, mask):
        for _ in range(3):
            lin(torch.randn(5, 4)).pow(2).sum().backward()
            opt.step()
            opt.zero_grad()
    for n, p in lin.named_parameters():
        off = ~mask[n]
        assert torch.equal(p.detach()[off], start[n][off])  # bit-identical
        assert not torch.equal(p.detach()[mask[n]], start[n][mask[n]])
    # outside the context the hooks are gone: weight decay moves everything again
    w0 = lin.weight.detach().clone()
    lin(torch.randn(5, 4)).sum().backward()
    opt.step()
    assert not torch.equal(lin.weight.detach()[~mask["weight"]], w0[~mask["weight"]])


def _run(task, lm_dir, overrides):
    from unlearnbench.causal_lm import CausalLM
    from unlearnbench.runner import get_protocol
    from unlearnbench.unlearning import get_method, make_config

    lm = CausalLM.load(str(lm_dir), device="cpu")
    start = {k: v.clone() for k, v in lm.model.state_dict().items()}
    m = get_method("wagle", "llm")
    cfg = make_config(m, overrides)
    out = m.unlearn(lm, task, cfg, data=get_protocol(task).training_data(task), progress=False)
    return start, out, cfg


@pytest.mark.parametrize("loss", ["graddiff", "npo"])
def test_wagle_frozen_weights_bit_identical(tofu_fixture_task, tiny_lm_dir, loss):
    start, out, cfg = _run(tofu_fixture_task, tiny_lm_dir,
                           {"loss": loss, "mask_ratio": "0.5", "max_steps": "3", "batch_size": "2", "seed": "0",
                            "weight_decay": "0.1", "lr": "1e-2"})
    assert cfg.weight_decay == 0.1 and cfg.epochs is not None
    named = dict(out.model.named_parameters())
    n_sel = sum(int(m.sum()) for m in out.wagle_mask.values())
    n_all = sum(m.numel() for m in out.wagle_mask.values())
    assert n_sel == int(0.5 * n_all)
    changed = 0
    for name, m in out.wagle_mask.items():
        now = named[name].detach()
        assert torch.equal(now[~m], start[name][~m]), name
        changed += int((now[m] != start[name][m]).sum())
    assert changed > 0


def test_wagle_deterministic_and_options(tofu_fixture_task, tiny_lm_dir):
    ov = {"loss": "npo", "max_steps": "2", "batch_size": "2", "seed": "3", "loss_config": '{"beta": 0.5}'}
    _, a, cfg = _run(tofu_fixture_task, tiny_lm_dir, ov)
    _, b, _ = _run(tofu_fixture_task, tiny_lm_dir, ov)
    assert cfg.loss_config == {"beta": 0.5}
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    with pytest.raises(UserError):
        _run(tofu_fixture_task, tiny_lm_dir, {"loss": "soul"})
    with pytest.raises(UserError):
        _run(tofu_fixture_task, tiny_lm_dir, {"loss": "npo", "loss_config": '{"bogus": 1}'})
    with pytest.raises(UserError):
        _run(tofu_fixture_task, tiny_lm_dir, {"loss": "npo", "mask_ratio": "1.5"})
