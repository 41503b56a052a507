"""Adam's and RMSprop's one update on arrays, and the multi-tensor GPU kernels beside them.

On every machine: the optimisers' CPU path is the array function, to the bit (so the GPU
comparisons below compare against what the CPU runs). With CuPy and a GPU: each
multi-tensor kernel agrees with the array function, on one parameter and on several at
once, and the optimisers agree across devices; elsewhere those tests are skipped with the
reason.
"""
import numpy as np
import pytest

import tinygan
from tinygan import backend
from tinygan.kernels import optim as optim_kernels
from tinygan.optim.adam import adam
from tinygan.optim.rmsprop import rmsprop

rng = np.random.default_rng(0)
gpu = pytest.mark.skipif(not backend.cuda_is_available(),
                         reason=f"needs CuPy and a CUDA GPU: {backend.cuda_unavailable_reason()}")


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


ADAM = dict(lr=1e-2, betas=(0.5, 0.9), eps=1e-8, weight_decay=0.1)
RMSPROP = dict(lr=1e-2, alpha=0.9, eps=1e-8, weight_decay=0.01)


# ------------------------------------------- the array function is the CPU path (CPU)

@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_array_function_is_the_optimizers_cpu_path(amsgrad):
    p0 = randn(10)
    p = tinygan.tensor(p0.copy(), requires_grad=True)
    opt = tinygan.optim.Adam([p], amsgrad=amsgrad, **ADAM)
    mine, m, v, vmax = p0.copy(), *(np.zeros(10, np.float32) for _ in range(3))
    for step in (1, 2, 3):
        g = randn(10)
        p.grad = tinygan.tensor(g)
        opt.step()
        adam(mine, g, m, v, vmax if amsgrad else None, step=step, **ADAM)
    np.testing.assert_array_equal(mine, p.detach().numpy())
    np.testing.assert_array_equal(v, opt.state[p]["exp_avg_sq"])


@pytest.mark.parametrize("momentum,centered", [(0.0, False), (0.9, False), (0.0, True),
                                               (0.5, True)])
def test_rmsprop_array_function_is_the_optimizers_cpu_path(momentum, centered):
    p0 = randn(10)
    p = tinygan.tensor(p0.copy(), requires_grad=True)
    opt = tinygan.optim.RMSprop([p], momentum=momentum, centered=centered, **RMSPROP)
    mine, s, gbar, buf = p0.copy(), *(np.zeros(10, np.float32) for _ in range(3))
    for _ in range(3):
        g = randn(10)
        p.grad = tinygan.tensor(g)
        opt.step()
        rmsprop(mine, g, s, gbar if centered else None, buf if momentum else None,
                momentum=momentum, **RMSPROP)
    np.testing.assert_array_equal(mine, p.detach().numpy())
    np.testing.assert_array_equal(s, opt.state[p]["square_avg"])


# --------------------------------------------- kernels == the array function (GPU)

def _cp():
    return backend.cupy_module()


def _update_all(name, multi, params, grads, states, step):
    """One step of every parameter: the multi-tensor kernel, or the array function on each."""
    if name == "adam":
        if multi:
            optim_kernels.adam_multi(params, grads, *states, step=step, **ADAM)
        else:
            for p, g, m, v in zip(params, grads, *states):
                adam(p, g, m, v, step=step, **ADAM)
    elif multi:
        optim_kernels.rmsprop_multi(params, grads, *states, **RMSPROP)
    else:
        for p, g, s in zip(params, grads, *states):
            rmsprop(p, g, s, **RMSPROP)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_optimizer_kernels(name):
    # one parameter: the kernel on the GPU against the array function on NumPy
    cp = _cp()
    p, g = randn(1000), randn(1000)
    states = [[np.zeros(1000, np.float32)] for _ in range(2 if name == "adam" else 1)]
    gpu_p, gpu_g = [cp.asarray(p)], [cp.asarray(g)]
    gpu_states = [[cp.asarray(s) for s in column] for column in states]
    for step in (1, 2, 3):
        _update_all(name, True, gpu_p, gpu_g, gpu_states, step)
        _update_all(name, False, [p], [g], states, step)
    np.testing.assert_allclose(cp.asnumpy(gpu_p[0]), p, rtol=1e-4, atol=1e-6)
    for column, gpu_column in zip(states, gpu_states):
        np.testing.assert_allclose(cp.asnumpy(gpu_column[0]), column[0], rtol=1e-4, atol=1e-6)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_multi_tensor_optimizer_kernels(name):
    # parameters of several sizes (one of 70,000: many blocks), updated in one launch,
    # against the array function on each in turn, on the GPU
    cp = _cp()
    sizes = [1, 3, 1000, 70_000, 17]
    ps = [cp.asarray(randn(n)) for n in sizes]
    gs = [cp.asarray(randn(n)) for n in sizes]
    n_states = 2 if name == "adam" else 1
    states = [[cp.zeros(n, cp.float32) for n in sizes] for _ in range(n_states)]
    ps2, states2 = [p.copy() for p in ps], [[s.copy() for s in col] for col in states]
    for step in (1, 2, 3):
        _update_all(name, True, ps, gs, states, step)
        _update_all(name, False, ps2, gs, states2, step)
    for p, p2 in zip(ps, ps2):
        cp.testing.assert_allclose(p, p2, rtol=1e-4, atol=1e-6)
    for col, col2 in zip(states, states2):
        for s, s2 in zip(col, col2):
            cp.testing.assert_allclose(s, s2, rtol=1e-4, atol=1e-6)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_optimizers_on_the_gpu_match_the_cpu(name):
    # the one-launch path of Optimizer.step (all of a group at once) against NumPy's, over
    # steps where one parameter has no gradient (it is skipped, as PyTorch skips it; then
    # the step counts differ and Adam's group goes parameter by parameter) and a reload
    shapes = [(4, 3, 2, 2), (4,), (7, 5)]
    cpu = [tinygan.tensor(randn(*s), requires_grad=True) for s in shapes]
    gpu = [tinygan.tensor(t.detach().numpy(), device="cuda", requires_grad=True) for t in cpu]
    make = (lambda ps: tinygan.optim.Adam(ps, lr=1e-2, betas=(0.5, 0.9), weight_decay=0.01)) \
        if name == "adam" else (lambda ps: tinygan.optim.RMSprop(ps, lr=1e-2, alpha=0.9))
    opts = [make(cpu), make(gpu)]
    for step in range(5):
        grads = [randn(*s) for s in shapes]
        for params in (cpu, gpu):
            for i, (p, g) in enumerate(zip(params, grads)):
                p.grad = None if (step == 2 and i == 1) else tinygan.tensor(g, device=p.device)
        for opt in opts:
            opt.step()
        if step == 3:
            opts[1].load_state_dict(opts[1].state_dict())
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(b.detach().to("cpu").numpy(), a.detach().numpy(),
                                   rtol=1e-4, atol=1e-6)
    steps = [opts[1].state[p]["step"] for p in gpu]
    assert steps == [opts[0].state[p]["step"] for p in cpu] == [5, 4, 5]
