"""The one thread policy: tiny models pinned to one thread, real models using the machine."""

from __future__ import annotations

import pytest
import torch

from unlearnbench import threads
from unlearnbench.errors import UserError


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.delenv("UNLEARNBENCH_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    before = torch.get_num_threads()
    torch.set_num_threads(3)  # something neither branch of the policy picks
    yield
    torch.set_num_threads(before)


def test_tiny_model_runs_on_one_thread_and_restores(two_threads):
    tiny = torch.nn.Linear(10, 10)
    with threads.thread_policy(tiny) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 3


def test_real_model_uses_the_machine(two_threads):
    with threads.thread_policy(threads.TINY_PARAMETERS + 1) as n:
        assert n == 2 and torch.get_num_threads() == 2


def test_env_overrides_both_but_not_a_world_build(two_threads, monkeypatch):
    monkeypatch.setenv("UNLEARNBENCH_THREADS", "2")
    with threads.thread_policy(torch.nn.Linear(2, 2)):
        assert torch.get_num_threads() == 2
    with threads.thread_policy(0, reproducible=True):
        assert torch.get_num_threads() == 1
        with threads.thread_policy(torch.nn.Linear(2, 2)):  # nested in a build: still pinned
            assert torch.get_num_threads() == 1
    with threads.thread_policy(torch.nn.Linear(2, 2)):  # the build flag does not leak out
        assert torch.get_num_threads() == 2


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_bad_env_value_is_a_user_error(monkeypatch, raw):
    monkeypatch.setenv("UNLEARNBENCH_THREADS", raw)
    with pytest.raises(UserError, match="UNLEARNBENCH_THREADS"):
        threads.env_threads()


def test_parameter_count_sees_through_adapters():
    class Adapter:
        model = torch.nn.Linear(3, 4)  # 16 parameters

    class Pipe:
        components = {"unet": torch.nn.Linear(2, 2), "tokenizer": object(), "vae": torch.nn.Linear(1, 1)}

    class Gen:
        pipe = Pipe()

    assert threads.parameter_count(Adapter()) == 16
    assert threads.parameter_count(Gen()) == 6 + 2
    assert threads.parameter_count(7) == 7


def _threads_seen_by_infer(task, monkeypatch) -> list[int]:
    """Spy on the task's protocol: the thread counts in force when it infers."""
    from unlearnbench import runner

    seen = []
    proto = runner.get_protocol(task)
    real_infer = type(proto).infer

    def spy(self, task, model, *, progress=True):
        seen.append(torch.get_num_threads())
        return real_infer(self, task, model, progress=progress)

    monkeypatch.setattr(type(proto), "infer", spy)
    return seen


def test_scoring_a_tiny_model_runs_pinned(two_threads, tofu_fixture_task, tiny_lm_dir, monkeypatch):
    from unlearnbench import runner

    seen = _threads_seen_by_infer(tofu_fixture_task, monkeypatch)
    runner.score(tofu_fixture_task.name, str(tiny_lm_dir), progress=False)
    assert seen == [1]
    assert torch.get_num_threads() == 3


def test_reference_build_runs_pinned(two_threads, tofu_fixture_task, tiny_lm_dir, tmp_path, monkeypatch):
    from unlearnbench import runner

    seen = _threads_seen_by_infer(tofu_fixture_task, monkeypatch)
    runner.build_reference(tofu_fixture_task.name, str(tiny_lm_dir), tmp_path / "ref.json", progress=False)
    assert seen == [1] and torch.get_num_threads() == 3


def test_worst_case_proxy_trains_pinned_whatever_the_override(two_threads, monkeypatch):
    """The worst-case forget set is task data: its proxy model trains on one thread, like a world build."""
    import numpy as np

    from unlearnbench import classifier_training
    from unlearnbench.tasks import worst_case
    from unlearnbench.tasks.classifier_protocol import ClassifierData

    monkeypatch.setenv("UNLEARNBENCH_THREADS", "2")
    seen = {}
    real_train = classifier_training.train_from_scratch

    def train_spy(*a, **k):
        seen["train"] = torch.get_num_threads()
        return real_train(*a, **k)

    def select_spy(module, x, y, m, cfg, progress=False):
        seen["select"] = torch.get_num_threads()
        return np.arange(m), {}

    monkeypatch.setattr(classifier_training, "train_from_scratch", train_spy)
    monkeypatch.setattr(worst_case, "select_worst_case", select_spy)
    rng = np.random.default_rng(0)
    x = rng.random((40, 1, 8, 8)).astype(np.float32)
    y = np.arange(40) % 10
    data = ClassifierData(x_train=x, y_train=y, x_test=x[:10], y_test=y[:10], num_classes=10, name="threads-spy")
    worst_case.worst_case_forget_set(data, {"fraction": 0.1}, architecture={"name": "digits-cnn", "kwargs": {}},
                                     recipe={"epochs": 1, "lr": 0.1, "batch_size": 20, "seed": 123})
    assert seen == {"train": 1, "select": 1}
