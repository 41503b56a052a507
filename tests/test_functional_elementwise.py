"""Elementwise ops and activations: values against NumPy, gradients against finite
differences (float64, random cotangents), on several shapes, broadcasting and strided views.
Inputs keep a margin from every kink (relu, abs, clamp bounds)."""
import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from grad_inputs import away, leaf, transposed
from tinygan.functional.activation import LeakyReLUGrad
from tinygan.testing import gradcheck, gradgradcheck


def strided(*shape, seed=0):
    """A leaf whose data is a strided slice (every other column) of a bigger array."""
    base = away(*shape[:-1], 2 * shape[-1], seed=seed)
    t = tinygan.Tensor(base[..., ::2], requires_grad=True)
    assert not t.data.flags.c_contiguous
    return t


SHAPES = [(), (5,), (3, 4), (2, 3, 2)]
BROADCAST = [((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 1, 3), (4, 1)), ((3, 4), ())]

UNARY = {
    "neg": (lambda x: -x, lambda a: -a, lambda a: a),
    "exp": (F.exp, np.exp, lambda a: a),
    "log": (F.log, np.log, np.abs),
    "sqrt": (F.sqrt, np.sqrt, np.abs),
    "rsqrt": (F.rsqrt, lambda a: 1 / np.sqrt(a), np.abs),
    "abs": (F.abs, np.abs, lambda a: a),
    "square": (F.square, np.square, lambda a: a),
    "pow3": (lambda x: x ** 3, lambda a: a ** 3, lambda a: a),
    "pow_half": (lambda x: x ** 0.5, np.sqrt, np.abs),
    "pow_neg": (lambda x: x ** -2.0, lambda a: a ** -2.0, lambda a: a),
    "rpow": (lambda x: 2.0 ** x, lambda a: 2.0 ** a, lambda a: a),
    "clamp": (lambda x: F.clamp(x, -0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7),
              lambda a: a),
    "clamp_min": (lambda x: x.clamp(min=0.05), lambda a: np.maximum(a, 0.05), lambda a: a),
    "tanh": (F.tanh, np.tanh, lambda a: a),
    "sigmoid": (F.sigmoid, lambda a: 1 / (1 + np.exp(-a)), lambda a: a),
    "relu": (F.relu, lambda a: np.maximum(a, 0), lambda a: a),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda a: np.where(a > 0, a, 0.2 * a),
                   lambda a: a),
    "leaky_relu_default": (F.leaky_relu, lambda a: np.where(a > 0, a, 0.01 * a), lambda a: a),
    "softplus": (F.softplus, lambda a: np.log1p(np.exp(a)), lambda a: a),
}


def unary_input(name, shape, seed=0):
    a = np.asarray(UNARY[name][2](away(*shape, seed=seed)))
    if name.startswith("clamp"):  # keep 0.05 from the clamp bounds too
        for bound in (-0.5, 0.7, 0.05):
            a = np.where(np.abs(a - bound) < 0.05, bound + 0.1, a)
    return a


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("shape", SHAPES)
def test_unary_value_and_gradient(name, shape):
    fn, reference, _ = UNARY[name]
    a = unary_input(name, shape)
    np.testing.assert_allclose(fn(tinygan.tensor(a)).numpy(), reference(a), rtol=1e-10)
    assert gradcheck(fn, [leaf(a)])


@pytest.mark.parametrize("name", UNARY)
def test_unary_gradient_on_non_contiguous_inputs(name):
    fn = UNARY[name][0]
    for x in (transposed(3, 4), strided(3, 4)):
        x.data[...] = unary_input(name, (3, 4))  # keep the op's domain and margins
        assert gradcheck(fn, [x])


@pytest.mark.parametrize("name", ["neg", "exp", "log", "sqrt", "pow3", "pow_half", "tanh",
                                  "sigmoid", "leaky_relu", "relu", "abs", "softplus", "clamp"])
def test_unary_second_derivative(name):
    assert gradgradcheck(UNARY[name][0], [leaf(unary_input(name, (2, 3), seed=1))])


@pytest.mark.parametrize("slope", [0.2, 0.0, 1.5, -0.3])
def test_leaky_relu_grad_op(slope):
    # LeakyReLUGrad, what LeakyReLU.backward returns: gx = gy where x > 0, else slope gy,
    # with x a constant (the slope is piecewise constant in x); linear in gy, so its own
    # derivative is itself
    x, gy = away(3, 4), away(3, 4, seed=1)
    op = lambda g: LeakyReLUGrad(x, slope)(g)  # noqa: E731
    np.testing.assert_allclose(op(tinygan.tensor(gy)).numpy(), np.where(x > 0, gy, slope * gy),
                               rtol=1e-12)
    assert gradcheck(op, [leaf(gy)])
    assert gradgradcheck(op, [leaf(gy)])


BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
    "F.add": (F.add, np.add),
    "F.sub": (F.sub, np.subtract),
    "F.mul": (F.mul, np.multiply),
    "F.div": (F.div, np.divide),
    "maximum": (F.maximum, np.maximum),
    "minimum": (F.minimum, np.minimum),
    "pow_tensor": (lambda a, b: F.abs(a) ** b, lambda a, b: np.abs(a) ** b),
}


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4))] + BROADCAST)
def test_binary_value_and_gradient_with_broadcasting(name, shapes):
    fn, reference = BINARY[name]
    a, b = away(*shapes[0], seed=1), away(*shapes[1], seed=2)
    if name in ("maximum", "minimum"):
        b = np.asarray(b + 0.05 * np.sign(b - a.mean()))  # no ties between a and b
    out = fn(tinygan.tensor(a), tinygan.tensor(b))
    np.testing.assert_allclose(out.numpy(), reference(a, b), rtol=1e-10)
    assert gradcheck(fn, [leaf(a), leaf(b)])


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div"])
def test_binary_gradient_on_non_contiguous_inputs(name):
    fn = BINARY[name][0]
    assert gradcheck(fn, [transposed(3, 4, seed=1), strided(3, 4, seed=2)])
    assert gradcheck(fn, [transposed(3, 4, seed=3), leaf(away(4, seed=4))])


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div"])
def test_binary_second_derivative_with_broadcasting(name):
    fn = BINARY[name][0]
    assert gradgradcheck(fn, [leaf(away(2, 3, seed=1)), leaf(away(3, seed=2))])


def test_binary_with_python_numbers_on_either_side():
    a = away(2, 3)
    for fn in (lambda x: x + 2.0, lambda x: 2.0 + x, lambda x: x - 2.0, lambda x: 2.0 - x,
               lambda x: x * 2.0, lambda x: 2.0 * x, lambda x: x / 2.0, lambda x: 2.0 / x):
        assert gradcheck(fn, [leaf(a)])
    np.testing.assert_allclose((2.0 - tinygan.tensor(a)).numpy(), 2.0 - a)
    np.testing.assert_allclose((2.0 / tinygan.tensor(a)).numpy(), 2.0 / a)


def test_where_differentiates_both_branches():
    a, b = away(3, 4, seed=1), away(3, 4, seed=2)
    cond = a > b
    out = F.where(cond, tinygan.tensor(a), tinygan.tensor(b))
    np.testing.assert_allclose(out.numpy(), np.where(cond, a, b))
    assert gradcheck(lambda x, y: F.where(cond, x, y), [leaf(a), leaf(b)])


def test_clamp_gradient_is_zero_where_clipped():
    x = tinygan.tensor(np.array([-2.0, 0.0, 2.0]), requires_grad=True)
    F.clamp(x, -1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 0.0])


def test_sigmoid_softplus_tanh_are_finite_for_huge_inputs():
    x = tinygan.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], requires_grad=True)
    s, sp, t = F.sigmoid(x), F.softplus(x), F.tanh(x)
    np.testing.assert_allclose(s.detach().numpy(), [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(sp.detach().numpy(), [0.0, 0.0, np.log(2), 50.0, 1000.0],
                               rtol=1e-6, atol=1e-7)
    (s.sum() + sp.sum() + t.sum()).backward()
    assert np.isfinite(x.grad.numpy()).all()
