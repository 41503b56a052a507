"""Learning-rate schedules: PyTorch's values, resuming mid-schedule, saving, bad arguments."""
import math

import numpy as np
import pytest

import tinygan
from tinygan import nn, optim
from tinygan.optim import lr_scheduler as S


def _opt(lr=0.05, groups=1):
    params = [{"params": nn.Linear(2, 2).parameters(), "lr": lr * (i + 1)} for i in range(groups)]
    return optim.SGD(params, lr=lr)


def _lrs(scheduler, n):
    """The lr of every group for the first n optimizer steps (step() after each)."""
    out = []
    for _ in range(n):
        out.append(scheduler.get_last_lr())
        scheduler.step()
    return np.array(out)


def test_linear_lr_matches_pytorch_values():
    # lr 0.05, factor 0.5 -> 1 over 4 steps, then constant (as torch's LinearLR)
    got = _lrs(S.LinearLR(_opt(0.05), start_factor=0.5, end_factor=1.0, total_iters=4), 6)[:, 0]
    np.testing.assert_allclose(got, [0.025, 0.03125, 0.0375, 0.04375, 0.05, 0.05], rtol=1e-12)


def test_linear_decay_to_zero_reaches_zero_and_stays():
    opt = _opt(0.1, groups=2)
    got = _lrs(S.LinearLR(opt, 1.0, 0.0, total_iters=4), 6)
    np.testing.assert_allclose(got[:, 0], [0.1, 0.075, 0.05, 0.025, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(got[:, 1], 2 * got[:, 0], atol=1e-15)  # each group its own


def test_step_exponential_and_cosine():
    np.testing.assert_allclose(_lrs(S.StepLR(_opt(1.0), step_size=2, gamma=0.5), 5)[:, 0],
                               [1, 1, 0.5, 0.5, 0.25])
    np.testing.assert_allclose(_lrs(S.ExponentialLR(_opt(1.0), gamma=0.9), 4)[:, 0],
                               [1, 0.9, 0.81, 0.729])
    got = _lrs(S.CosineAnnealingLR(_opt(1.0), T_max=4, eta_min=0.1), 5)[:, 0]
    want = [0.1 + 0.9 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[-1] == pytest.approx(0.1)


def test_a_new_scheduler_with_last_epoch_carries_on_exactly():
    whole = _opt(0.2)
    a = S.LinearLR(whole, 1.0, 0.0, total_iters=10)
    for _ in range(4):
        a.step()
    resumed = _opt(0.2)
    resumed.load_state_dict(whole.state_dict())  # initial_lr travels with the optimizer
    b = S.LinearLR(resumed, 1.0, 0.0, total_iters=10, last_epoch=a.last_epoch - 1)
    assert b.get_last_lr() == a.get_last_lr()
    for _ in range(8):
        a.step()
        b.step()
        assert b.get_last_lr() == a.get_last_lr()  # bit-identical, not just close


def test_state_dict_round_trips_through_a_file(tmp_path):
    opt = _opt(0.3)
    s = S.StepLR(opt, step_size=3, gamma=0.1)
    for _ in range(4):
        s.step()
    tinygan.save({"opt": opt.state_dict(), "sched": s.state_dict()}, tmp_path / "c.npz")
    state = tinygan.load(tmp_path / "c.npz")
    opt2 = _opt(0.3)
    opt2.load_state_dict(state["opt"])
    s2 = S.StepLR(opt2, step_size=1, gamma=0.5)
    s2.load_state_dict(state["sched"])
    assert (s2.step_size, s2.gamma, s2.last_epoch) == (3, 0.1, 4)
    s.step()
    s2.step()
    assert s2.get_last_lr() == pytest.approx(s.get_last_lr())


def test_resuming_without_initial_lr_is_a_clear_error():
    with pytest.raises(KeyError, match="initial_lr"):
        S.LinearLR(_opt(), 1.0, 0.0, total_iters=5, last_epoch=3)


@pytest.mark.parametrize("make, message", [
    (lambda o: S.LinearLR(o, start_factor=0.0), "start_factor"),
    (lambda o: S.LinearLR(o, end_factor=1.5), "end_factor"),
    (lambda o: S.LinearLR(o, total_iters=0), "total_iters"),
    (lambda o: S.StepLR(o, step_size=0), "step_size"),
    (lambda o: S.CosineAnnealingLR(o, T_max=0), "T_max"),
])
def test_bad_arguments_name_themselves(make, message):
    with pytest.raises(ValueError, match=message):
        make(_opt())


def test_same_values_as_pytorch():
    torch = pytest.importorskip("torch", exc_type=ImportError)
    cases = [("LinearLR", dict(start_factor=0.25, end_factor=0.0, total_iters=7)),
             ("StepLR", dict(step_size=3, gamma=0.3)),
             ("ExponentialLR", dict(gamma=0.95)),
             ("CosineAnnealingLR", dict(T_max=6, eta_min=0.01))]
    for name, kwargs in cases:
        mine = getattr(S, name)(_opt(0.1), **kwargs)
        p = torch.nn.Parameter(torch.zeros(1))
        topt = torch.optim.SGD([p], lr=0.1)
        theirs = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
        for _ in range(12):
            assert mine.get_last_lr()[0] == pytest.approx(theirs.get_last_lr()[0], abs=1e-12), name
            topt.step()
            mine.step()
            theirs.step()
