"""The gradient checker itself, and the WGAN-GP penalty path it exists to prove.

A check that backpropagates a plain sum is blind wherever the gradient of the sum
vanishes, as it does through training-mode batch_norm; tinygan's gradcheck uses a random
cotangent, so it catches a wrong backward there and everywhere else.
"""
import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from tinygan.testing import GradcheckError, gradcheck, gradgradcheck


def away(*shape, seed=0, margin=0.1):
    r = np.random.default_rng(seed).standard_normal(shape)
    return np.asarray(np.where(r >= 0, 1.0, -1.0) * (margin + np.abs(r)))


def leaf(a):
    return tinygan.tensor(np.asarray(a, np.float64), requires_grad=True)


def sum_cotangent_check(fn, x, eps=1e-6, atol=1e-5):
    """The naive check: grad of fn(x).sum() against finite differences of the sum."""
    analytic, = tinygan.grad(fn(x).sum(), x)
    numeric = np.zeros(x.shape)
    with tinygan.no_grad():
        for j in np.ndindex(*x.shape):
            old = x.data[j]
            x.data[j] = old + eps
            plus = fn(x).sum().item()
            x.data[j] = old - eps
            minus = fn(x).sum().item()
            x.data[j] = old
            numeric[j] = (plus - minus) / (2 * eps)
    return np.allclose(analytic.numpy(), numeric, atol=atol), analytic.numpy()


class ForgetfulBatchNorm(tinygan.Function):
    """Training-mode batch norm (no affine) whose backward forgets everything: dx = 0."""

    def forward(self, x):
        return (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)

    def backward(self, gy):
        return gy * 0.0


class WrongSin(tinygan.Function):
    """y = sin x with a wrong derivative (sin instead of cos)."""

    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        return gy * tinygan.Tensor(np.sin(self.inputs[0].data))


class CubeWithConstantDerivative(tinygan.Function):
    """y = x^3 whose backward uses saved arrays: right once, blind to second derivatives."""

    def forward(self, x):
        self.slope = 3 * x ** 2
        return x ** 3

    def backward(self, gy):
        return gy * tinygan.Tensor(self.slope)


def test_sum_cotangent_is_blind_on_training_batch_norm():
    x = leaf(away(6, 3))
    bn = lambda t: F.batch_norm(t, None, None, training=True)  # noqa: E731
    # the gradient of sum(batch_norm(x)) is zero: a sum cannot see what backward does
    ok, g = sum_cotangent_check(bn, x)
    assert ok and np.abs(g).max() < 1e-10
    # so a backward that returns zeros passes the sum check...
    assert sum_cotangent_check(lambda t: ForgetfulBatchNorm()(t), x)[0]
    # ...while tinygan's gradcheck (random cotangent) passes the real op and catches it
    assert gradcheck(bn, [x])
    with pytest.raises(GradcheckError, match="analytic -?0,"):
        gradcheck(lambda t: ForgetfulBatchNorm()(t), [x])


def test_wrong_derivative_raises_a_message_naming_input_element_and_both_values():
    a, b = leaf(away(3)), leaf(away(2, 2, seed=1))
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda p, q: p.sum() + WrongSin()(q), [a, b])
    message = str(info.value)
    assert "input 1 (shape (2, 2))" in message
    assert "element (" in message
    assert "analytic" in message and "numeric" in message
    j = tuple(int(v) for v in message.split("element (")[1].split(")")[0].split(","))
    analytic = float(message.split("analytic ")[1].split(",")[0])
    numeric = float(message.split("numeric ")[1].split(",")[0])
    assert not np.isclose(analytic, numeric, rtol=1e-3)
    assert 0 <= j[0] < 2 and 0 <= j[1] < 2
    assert gradcheck(WrongSin(), [b], raise_exception=False) is False


def test_wrong_second_derivative_is_caught_by_gradgradcheck_only():
    x = leaf(away(4))
    assert gradcheck(lambda t: CubeWithConstantDerivative()(t), [x])
    with pytest.raises(GradcheckError, match="input 0"):
        gradgradcheck(lambda t: CubeWithConstantDerivative()(t), [x])
    assert gradgradcheck(lambda t: t ** 3, [x])


def test_gradcheck_input_rules():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(F.tanh, [tinygan.randn(3, requires_grad=True)])
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(F.tanh, [tinygan.tensor(away(3))])
    # inputs that do not require grad are passed through unchecked
    w = tinygan.tensor(away(3, seed=1))
    assert gradcheck(lambda x, c: x * c, [leaf(away(3)), w])


def test_gradcheck_checks_every_output_of_a_tuple():
    x = leaf(away(3))
    assert gradcheck(lambda t: (F.tanh(t), t * t), [x])
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: (F.tanh(t), WrongSin()(t)), [x])


# ---------------------------------------------------------------- the WGAN-GP path

def critic(x, w1, b1, w2, b2, w3, b3, activation=lambda h: F.leaky_relu(h, 0.2)):
    """D(x) by hand: conv 4x4/2 -> leaky_relu -> conv 3x3/2 -> leaky_relu -> linear."""
    h = activation(F.conv2d(x, w1, b1, stride=2, padding=1))
    h = activation(F.conv2d(h, w2, b2, stride=2, padding=1))
    return F.linear(h.reshape(x.shape[0], -1), w3, b3)


def gradient_penalty(real_fake_mix, params):
    """Gulrajani et al. 2017, eq. 3: E[(||grad_x D(x)||_2 - 1)^2] at interpolated points."""
    x = tinygan.tensor(real_fake_mix, requires_grad=True)
    with tinygan.enable_grad():  # gradcheck evaluates its function under no_grad
        g, = tinygan.grad(critic(x, *params).sum(), x, create_graph=True)
    norm = (g.reshape(x.shape[0], -1) ** 2).sum(1).sqrt()
    return ((norm - 1.0) ** 2).mean()


def critic_params(seed=0):
    shapes = [(3, 2, 4, 4), (3,), (4, 3, 3, 3), (4,), (1, 16), (1,)]
    return [away(*s, seed=seed + i) * 0.5 for i, s in enumerate(shapes)]


def test_gradient_penalty_parameter_gradients_match_finite_differences():
    mix = away(2, 2, 8, 8, seed=10)
    params = [leaf(p) for p in critic_params()]
    assert gradcheck(lambda *p: gradient_penalty(mix, p), params)


def test_gradient_penalty_backward_fills_grad_like_finite_differences():
    mix = away(2, 2, 8, 8, seed=11)
    params = [leaf(p) for p in critic_params(seed=5)]
    penalty = gradient_penalty(mix, params)
    penalty.backward()
    # grad_x D(x) does not involve the biases (leaky_relu's slope is piecewise constant),
    # so, as in PyTorch, they get no gradient from the penalty; the weights do
    assert [p.grad is None for p in params] == [False, True, False, True, False, True]
    assert all(params[k].grad.shape == params[k].shape for k in (0, 2, 4))
    eps = 1e-6
    rng = np.random.default_rng(0)
    for k in (0, 2, 4):  # both conv weights and the linear weight, a few elements each
        p = params[k]
        for _ in range(4):
            j = tuple(int(rng.integers(s)) for s in p.shape)
            with tinygan.no_grad():
                old = p.data[j]
                p.data[j] = old + eps
                plus = gradient_penalty(mix, params).item()
                p.data[j] = old - eps
                minus = gradient_penalty(mix, params).item()
                p.data[j] = old
            np.testing.assert_allclose(p.grad.numpy()[j], (plus - minus) / (2 * eps),
                                       rtol=1e-4, atol=1e-7)


def test_gradient_penalty_through_a_transposed_conv_generator():
    # the generator's side: the penalty reaches G's weights through D's double backward.
    # With leaky_relu, grad_x D is piecewise constant in x, so G would get no gradient: use
    # a smooth activation (as an R1 penalty on a softplus critic would)
    z = away(2, 3, 2, 2, seed=20)
    d_params = [tinygan.tensor(p) for p in critic_params(seed=3)]

    def generator_penalty(wg, bg):
        with tinygan.enable_grad():
            fake = F.tanh(F.conv_transpose2d(tinygan.tensor(z), wg, bg, stride=4))  # 2 -> 8
            d_out = critic(fake, *d_params, activation=F.softplus)
            g, = tinygan.grad(d_out.sum(), fake, create_graph=True)
        norm = (g.reshape(2, -1) ** 2).sum(1).sqrt()
        return ((norm - 1.0) ** 2).mean()

    assert gradcheck(generator_penalty, [leaf(away(3, 2, 4, 4, seed=21) * 0.5),
                                         leaf(away(2, seed=22))])
