"""Optimisers against their formulas written out in NumPy, three steps on a toy problem."""
import hashlib
import math

import numpy as np
import pytest

import tinygan
from tinygan import optim
from tinygan.kernels import optim as optim_kernels
from tinygan.optim import adam as adam_module
from tinygan.optim import rmsprop as rmsprop_module

RNG = np.random.default_rng(0)
A = RNG.standard_normal((4, 3))
B = RNG.standard_normal(4)
P0 = RNG.standard_normal(3)


def toy_grad(p):
    """The gradient of the toy loss 0.5 |A p - b|^2."""
    return A.T @ (A @ p - B)


def run_engine(make, steps=3, dtype=np.float64):
    p = tinygan.tensor(P0.astype(dtype), requires_grad=True)
    opt = make([p])
    for _ in range(steps):
        p.grad = tinygan.tensor(toy_grad(p.data.astype(np.float64)).astype(dtype))
        opt.step()
    return p.data


# -- the references, from the papers / PyTorch's documented algorithms -------------------

def sgd_reference(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, steps=3):
    p, buf = P0.copy(), None
    for _ in range(steps):
        g = toy_grad(p) + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def adam_reference(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, steps=3):
    p, m, v, vmax = P0.copy(), 0.0, 0.0, 0.0
    for t in range(1, steps + 1):
        g = toy_grad(p) + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        m_hat = m / (1 - b1 ** t)
        v_hat = (vmax if amsgrad else v) / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def rmsprop_reference(lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                      steps=3):
    p, s, gbar, buf = P0.copy(), 0.0, 0.0, 0.0
    for _ in range(steps):
        g = toy_grad(p) + weight_decay * p
        s = alpha * s + (1 - alpha) * g * g
        if centered:
            gbar = alpha * gbar + (1 - alpha) * g
            avg = np.sqrt(s - gbar * gbar) + eps
        else:
            avg = np.sqrt(s) + eps
        if momentum > 0:
            buf = momentum * buf + g / avg
            p = p - lr * buf
        else:
            p = p - lr * g / avg
    return p


SGD_CASES = [dict(lr=0.05), dict(lr=0.05, momentum=0.9),
             dict(lr=0.05, momentum=0.9, dampening=0.3),
             dict(lr=0.05, momentum=0.9, nesterov=True),
             dict(lr=0.05, momentum=0.5, weight_decay=0.1),
             dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)]
ADAM_CASES = [dict(lr=0.1), dict(lr=0.1, betas=(0.5, 0.9)), dict(lr=0.1, weight_decay=0.1),
              dict(lr=0.1, amsgrad=True), dict(lr=0.1, eps=1e-3, amsgrad=True, weight_decay=0.5)]
RMSPROP_CASES = [dict(lr=0.01), dict(lr=0.01, momentum=0.9), dict(lr=0.01, centered=True),
                 dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1),
                 dict(lr=0.01, alpha=0.9, eps=1e-4)]


@pytest.mark.parametrize("kw", SGD_CASES)
def test_sgd_matches_formula(kw):
    got = run_engine(lambda ps: optim.SGD(ps, **kw))
    np.testing.assert_allclose(got, sgd_reference(**kw), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kw", ADAM_CASES)
def test_adam_matches_formula(kw):
    got = run_engine(lambda ps: optim.Adam(ps, **kw))
    ref = dict(kw)
    if "betas" in ref:
        ref["b1"], ref["b2"] = ref.pop("betas")
    np.testing.assert_allclose(got, adam_reference(**ref), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kw", RMSPROP_CASES)
def test_rmsprop_matches_formula(kw):
    got = run_engine(lambda ps: optim.RMSprop(ps, **kw))
    np.testing.assert_allclose(got, rmsprop_reference(**kw), rtol=0, atol=1e-6)


MAKERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1, amsgrad=True),
    "rmsprop": lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True,
                                        weight_decay=0.1),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_float32_stays_float32(name):
    got = run_engine(MAKERS[name], dtype=np.float32)
    assert got.dtype == np.float32
    p = tinygan.tensor(P0.astype(np.float32), requires_grad=True)
    opt = MAKERS[name]([p])
    p.grad = tinygan.tensor(np.ones(3, np.float32))
    opt.step()
    opt.step()
    for value in opt.state[p].values():
        if hasattr(value, "dtype"):
            assert value.dtype == np.float32
    assert p.data.dtype == np.float32
    np.testing.assert_allclose(got, run_engine(MAKERS[name]), atol=1e-5)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_step_updates_in_place_and_leaves_grad_alone(name):
    p = tinygan.tensor(P0.astype(np.float32), requires_grad=True)
    data = p.data
    opt = MAKERS[name]([p])
    g = np.full(3, 0.5, np.float32)
    p.grad = tinygan.tensor(g)
    opt.step()
    assert p.data is data
    np.testing.assert_array_equal(p.grad.data, g)
    assert not np.array_equal(p.data, P0.astype(np.float32))


def test_step_with_autograd_gradient():
    p = tinygan.tensor([1.0, -2.0, 3.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    loss = (p * p).sum()
    loss.backward()
    opt.step()
    np.testing.assert_allclose(p.data, np.array([0.8, -1.6, 2.4], np.float32), rtol=1e-6)
    assert p.grad is not None
    opt.zero_grad()
    assert p.grad is None


def test_params_without_grad_are_skipped():
    a = tinygan.tensor([1.0, 2.0], requires_grad=True)
    b = tinygan.tensor([3.0, 4.0], requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = tinygan.tensor([1.0, 1.0])
    opt.step()
    np.testing.assert_array_equal(b.data, np.array([3.0, 4.0], np.float32))
    assert b not in opt.state and a in opt.state


def test_zero_grad_keeps_arrays_when_not_set_to_none():
    p = tinygan.tensor([1.0, 2.0], requires_grad=True)
    p.grad = tinygan.tensor([5.0, 6.0])
    grad = p.grad
    optim.SGD([p], lr=1.0).zero_grad(set_to_none=False)
    assert p.grad is grad
    np.testing.assert_array_equal(grad.data, [0.0, 0.0])


def test_param_groups_take_their_own_hyper_parameters():
    a = tinygan.tensor([1.0], requires_grad=True)
    b = tinygan.tensor([1.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    a.grad = tinygan.tensor([1.0])
    b.grad = tinygan.tensor([1.0])
    opt.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.9, 0.5], rtol=1e-6)


def test_bad_arguments_are_clear_errors():
    p = tinygan.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="more than one"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="Tensors"):
        optim.SGD([np.zeros(2)], lr=0.1)


# -- the bits of an update are part of its contract ------------------------------------------

# a training run, a resumed run and a study reproduce only while every update rounds the
# same way: the SHA-256 of the parameter and state bytes after three float32 steps
ROUNDING_CASES = [
    ("Adam", dict(lr=2e-4, betas=(0.5, 0.999)), "83b47009128a1789"),
    ("Adam", dict(lr=1e-2, weight_decay=0.1, amsgrad=True), "0729d093bb867cb8"),
    ("RMSprop", dict(lr=5e-5), "ddbbec30fb5edf8d"),
    ("RMSprop", dict(lr=1e-2, centered=True, momentum=0.5, weight_decay=0.1), "832b4756cbe7c219"),
]


@pytest.mark.parametrize("name,kw,digest", ROUNDING_CASES)
def test_updates_round_as_they_always_have(name, kw, digest):
    i = np.arange(1000)  # values made without a random generator or libm
    p = tinygan.tensor((((i * 7919) % 1000 - 500) / 250).astype(np.float32), requires_grad=True)
    opt = getattr(optim, name)([p], **kw)
    for k in range(3):
        p.grad = tinygan.tensor((((i * 104729) % 997 - 498) / 1000 * (k + 1)).astype(np.float32))
        opt.step()
    state = opt.state[p]
    arrays = [p.data] + [state[key] for key in sorted(state) if key != "step"]
    got = hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()[:16]
    assert got == digest


# -- state dicts ----------------------------------------------------------------------------

def _two_params(seed):
    rng = np.random.default_rng(seed)
    return [tinygan.tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True),
            tinygan.tensor(rng.standard_normal(2).astype(np.float32), requires_grad=True)]


def _set_grads(params, step):
    for k, p in enumerate(params):
        p.grad = tinygan.tensor(np.sin(p.data * (step + 1) + k).astype(np.float32))


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_state_dict_resumes_bit_identically(name):
    params = _two_params(1)
    opt = MAKERS[name](params)
    for step in range(2):
        _set_grads(params, step)
        opt.step()
    saved = opt.state_dict()
    twins = [tinygan.tensor(p.data.copy(), requires_grad=True) for p in params]
    twin_opt = MAKERS[name](twins)
    twin_opt.load_state_dict(saved)
    _set_grads(params, 2)
    _set_grads(twins, 2)
    opt.step()
    twin_opt.step()
    for p, q in zip(params, twins):
        np.testing.assert_array_equal(p.data, q.data)
    assert twin_opt.state_dict()["state"][0]["step"] == 3


def test_state_dict_layout_is_pytorchs():
    params = _two_params(0)
    opt = optim.Adam([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}])
    params[1].grad = tinygan.tensor(np.ones(2, np.float32))
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.5
    assert set(sd["state"]) == {1}
    assert set(sd["state"][1]) == {"step", "exp_avg", "exp_avg_sq"}
    opt.step()  # the state dict is a snapshot
    assert sd["state"][1]["step"] == 1


def test_state_dict_round_trips_through_a_file(tmp_path):
    params = _two_params(3)
    opt = MAKERS["adam"](params)
    _set_grads(params, 0)
    opt.step()
    tinygan.save(opt.state_dict(), tmp_path / "opt.npz")
    twins = [tinygan.tensor(p.data.copy(), requires_grad=True) for p in params]
    twin_opt = MAKERS["adam"](twins)
    twin_opt.load_state_dict(tinygan.load(tmp_path / "opt.npz"))
    assert twin_opt.param_groups[0]["betas"] == opt.param_groups[0]["betas"]
    _set_grads(params, 1)
    _set_grads(twins, 1)
    opt.step()
    twin_opt.step()
    for p, q in zip(params, twins):
        np.testing.assert_array_equal(p.data, q.data)


def test_load_state_dict_names_the_mismatch():
    opt = optim.SGD(_two_params(0), lr=0.1, momentum=0.9)
    other = optim.SGD(_two_params(0)[:1], lr=0.1)
    with pytest.raises(ValueError, match="group 0 has 1 parameters"):
        opt.load_state_dict(other.state_dict())


# -- clipping ---------------------------------------------------------------------------------

def test_clip_clamps_every_parameter_in_place():
    params = [tinygan.tensor(np.linspace(-1, 1, 7).astype(np.float32), requires_grad=True),
              tinygan.tensor(np.array([[0.5, -0.005], [0.02, -3.0]], np.float32),
                             requires_grad=True)]
    arrays = [p.data for p in params]
    optim.clip_(params, -0.01, 0.01)
    for p, a in zip(params, arrays):
        assert p.data is a and p.data.dtype == np.float32
        assert p.data.min() >= -0.01 and p.data.max() <= 0.01
    np.testing.assert_array_equal(params[1].data,
                                  np.array([[0.01, -0.005], [0.01, -0.01]], np.float32))


def test_clip_grad_norm_returns_the_norm_and_rescales():
    a = tinygan.tensor([0.0, 0.0], requires_grad=True)
    b = tinygan.tensor([0.0], requires_grad=True)
    a.grad = tinygan.tensor([3.0, 0.0])
    b.grad = tinygan.tensor([4.0])
    total = optim.clip_grad_norm_([a, b], max_norm=1.0)
    assert math.isclose(total.item(), 5.0, rel_tol=1e-6)
    new = math.sqrt(float((a.grad.data ** 2).sum() + (b.grad.data ** 2).sum()))
    assert math.isclose(new, 1.0, rel_tol=1e-5)
    assert a.grad.data.dtype == np.float32
    total = optim.clip_grad_norm_([a, b], max_norm=10.0)  # under the limit: untouched
    assert math.isclose(total.item(), 1.0, rel_tol=1e-5)


# -- PyTorch itself, when it happens to be installed ----------------------------------------

@pytest.mark.parametrize("name,kw", [("SGD", c) for c in SGD_CASES]
                         + [("Adam", c) for c in ADAM_CASES]
                         + [("RMSprop", c) for c in RMSPROP_CASES])
def test_matches_torch(name, kw):
    torch = pytest.importorskip("torch", exc_type=ImportError)
    p = torch.tensor(P0.copy(), requires_grad=True)
    opt = getattr(torch.optim, name)([p], **kw)
    for _ in range(3):
        p.grad = torch.from_numpy(toy_grad(p.detach().numpy()))
        opt.step()
    got = run_engine(lambda ps: getattr(optim, name)(ps, **kw))
    np.testing.assert_allclose(got, p.detach().numpy(), rtol=0, atol=1e-6)


# -- the one-launch GPU path, with the array function standing in for the kernel -------------

def _stand_in(update, calls):
    """A multi-tensor kernel played by the array function, parameter after parameter."""
    def multi(*columns, **hyper):
        calls.append(update.__name__)
        for row in zip(*columns):
            update(*row, **hyper)
    return multi


@pytest.fixture
def one_launch(monkeypatch):
    """Every group fits one launch (kernels "on" for NumPy arrays); returns the launches."""
    calls = []
    monkeypatch.setattr(optim_kernels, "enabled", lambda *arrays: True)
    monkeypatch.setattr(adam_module, "adam_multi", _stand_in(adam_module.adam, calls))
    monkeypatch.setattr(rmsprop_module, "rmsprop_multi",
                        _stand_in(rmsprop_module.rmsprop, calls))
    return calls


@pytest.mark.parametrize("name,kw", [("Adam", c) for c in ADAM_CASES if not c.get("amsgrad")]
                         + [("RMSprop", dict(lr=0.01)),
                            ("RMSprop", dict(lr=0.01, weight_decay=0.1))])
def test_one_launch_dispatch_passes_the_right_arguments(name, kw, one_launch):
    got = run_engine(lambda ps: getattr(optim, name)(ps, **kw))
    assert len(one_launch) == 3  # one launch a step for the whole group
    ref = dict(kw)
    if "betas" in ref:
        ref["b1"], ref["b2"] = ref.pop("betas")
    want = (adam_reference if name == "Adam" else rmsprop_reference)(**ref)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name,kw", [("Adam", dict(lr=0.1, amsgrad=True)),
                                     ("RMSprop", dict(lr=0.01, momentum=0.9)),
                                     ("RMSprop", dict(lr=0.01, centered=True))])
def test_variants_without_a_kernel_go_parameter_by_parameter(name, kw, one_launch):
    run_engine(lambda ps: getattr(optim, name)(ps, **kw))
    assert one_launch == []


@pytest.mark.parametrize("name", ["Adam", "RMSprop"])
def test_one_launch_group_step_equals_the_parameter_by_parameter_one(name, monkeypatch):
    # the whole-group path (the array function standing in for the kernel) against the
    # plain loop, over steps where a parameter lacks a gradient and after a state reload
    rng = np.random.default_rng(5)
    shapes = [(3, 2), (4,), (2, 2, 2)]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(5)]

    def train():
        params = [tinygan.tensor(np.ones(s), requires_grad=True) for s in shapes]
        opt = getattr(optim, name)(params, lr=0.01, weight_decay=0.1)
        for step, gs in enumerate(grads):
            for i, (p, g) in enumerate(zip(params, gs)):
                p.grad = None if (step == 2 and i == 1) else tinygan.tensor(g)
            opt.step()
            if step == 3:
                opt.load_state_dict(opt.state_dict())
        return [p.data.copy() for p in params], [opt.state[p]["step"] for p in params]

    plain, plain_steps = train()
    with monkeypatch.context() as m:
        launches = []
        m.setattr(optim_kernels, "enabled", lambda *arrays: True)
        m.setattr(adam_module, "adam_multi", _stand_in(adam_module.adam, launches))
        m.setattr(rmsprop_module, "rmsprop_multi", _stand_in(rmsprop_module.rmsprop, launches))
        fast, fast_steps = train()
    for a, b in zip(plain, fast):
        np.testing.assert_array_equal(a, b)
    assert plain_steps == fast_steps == [5, 4, 5]
    # Adam's kernel takes one step count: once the parameters' counts differ (after step 2,
    # where one had no gradient), its group goes parameter by parameter; RMSprop's has none
    assert launches == (["adam"] * 3 if name == "Adam" else ["rmsprop"] * 5)
