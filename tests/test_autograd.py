"""The graph walk: deep chains, shared inputs, accumulation, tinygan.grad, higher order."""
import gc

import numpy as np
import pytest

import tinygan
import tinygan.functional as F


def test_chain_of_ten_thousand_ops_needs_no_recursion():
    x = tinygan.tensor(np.array([0.5, -0.25]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1.0001 ** 10_000, rtol=1e-9)
    del y
    gc.collect()


def test_deep_chain_through_grad_with_create_graph():
    # deeper than Python's recursion limit, in the first and the second backward pass
    x = tinygan.tensor(np.array([0.3]), requires_grad=True)
    y = x
    for _ in range(2_000):
        y = F.tanh(y) * 0.5 + y * 0.5
    g, = tinygan.grad(y.sum(), x, create_graph=True)
    gg, = tinygan.grad(g.sum(), x)
    assert np.isfinite(g.item()) and np.isfinite(gg.item())


def test_tensor_used_several_times_accumulates_every_path():
    x = tinygan.tensor(np.array([1.5, -2.0]), requires_grad=True)
    y = x * x + x * 3.0 - F.exp(x)  # dy/dx = 2x + 3 - e^x
    y.sum().backward()
    a = np.array([1.5, -2.0])
    np.testing.assert_allclose(x.grad.numpy(), 2 * a + 3 - np.exp(a))


def test_diamond_graph_accumulates_both_branches():
    x = tinygan.tensor(np.array([0.7]), requires_grad=True)
    h = x * 2.0
    left, right = F.tanh(h), h * h
    (left + right).sum().backward()
    t = np.tanh(1.4)
    np.testing.assert_allclose(x.grad.numpy(), [(1 - t * t) * 2 + 2 * 1.4 * 2])


def test_backward_twice_on_two_graphs_accumulates():
    x = tinygan.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3.0 + 2 * np.array([1.0, 2.0]))


def test_backward_twice_on_the_same_graph_accumulates():
    x = tinygan.tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (F.exp(x) * x).sum()
    loss.backward(retain_graph=True)  # as in PyTorch: the first call must keep the graph
    loss.backward()
    a = np.array([1.0, 2.0])
    np.testing.assert_allclose(x.grad.numpy(), 2 * (np.exp(a) * (1 + a)))


def test_backward_frees_the_graph_unless_retained():
    x = tinygan.tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (F.exp(x) * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        loss.backward()


def test_backward_with_gradient_for_non_scalar():
    x = tinygan.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (x * x).backward(tinygan.tensor(np.array([1.0, 0.0, -1.0])))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0, -6.0])


def test_grad_of_leaves_only_intermediates_have_no_grad():
    x = tinygan.randn(3, requires_grad=True)
    h = x * 2.0
    h.sum().backward()
    assert h.grad is None
    assert x.grad is not None


def test_grad_returns_without_touching_dot_grad():
    x = tinygan.randn(3, requires_grad=True)
    w = tinygan.randn(3, requires_grad=True)
    gx, gw = tinygan.grad((x * w).sum(), [x, w])
    np.testing.assert_allclose(gx.numpy(), w.detach().numpy())
    np.testing.assert_allclose(gw.numpy(), x.detach().numpy())
    assert x.grad is None and w.grad is None
    assert not gx.requires_grad  # no create_graph: plain values


def test_grad_of_an_intermediate():
    x = tinygan.tensor(np.array([0.5, 1.0]), requires_grad=True)
    h = x * 3.0
    y = (h * h).sum()
    gh, gx = tinygan.grad(y, [h, x])
    np.testing.assert_allclose(gh.numpy(), 2 * 3.0 * np.array([0.5, 1.0]))
    np.testing.assert_allclose(gx.numpy(), 18.0 * np.array([0.5, 1.0]))


def test_grad_with_create_graph_second_derivative_of_cube():
    a = np.array([-1.5, 0.5, 2.0])
    x = tinygan.tensor(a, requires_grad=True)
    dx, = tinygan.grad((x ** 3).sum(), x, create_graph=True)
    assert dx.requires_grad
    np.testing.assert_allclose(dx.detach().numpy(), 3 * a ** 2)
    d2x, = tinygan.grad(dx.sum(), x)
    np.testing.assert_allclose(d2x.numpy(), 6 * a)


def test_third_derivative_and_backward_through_a_gradient():
    a = np.array([0.3, -0.8])
    x = tinygan.tensor(a, requires_grad=True)
    d1, = tinygan.grad(F.exp(x * 2.0).sum(), x, create_graph=True)
    d2, = tinygan.grad(d1.sum(), x, create_graph=True)
    d2.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 8 * np.exp(2 * a))


def test_backward_with_create_graph_gives_differentiable_grad():
    x = tinygan.tensor(np.array([2.0]), requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    gg, = tinygan.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), [12.0])


def test_grad_of_unused_input_raises_unless_allow_unused():
    x = tinygan.randn(3, requires_grad=True)
    unused = tinygan.randn(3, requires_grad=True)
    y = (x * 2.0).sum()
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(3,\)\) was not used.*allow_unused"):
        tinygan.grad(y, [x, unused])
    gx, gu = tinygan.grad(y, [x, unused], allow_unused=True)
    np.testing.assert_allclose(gx.numpy(), 2.0)
    assert gu is None


def test_grad_needs_inputs_that_require_grad_and_scalar_outputs():
    x = tinygan.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        tinygan.grad((x * 2.0).sum(), tinygan.randn(3))
    with pytest.raises(RuntimeError, match=r"non-scalar output of shape \(3,\) needs grad_outputs"):
        tinygan.grad(x * 2.0, x)
    g, = tinygan.grad(x * 2.0, x, grad_outputs=tinygan.ones(3))
    np.testing.assert_allclose(g.numpy(), 2.0)


def test_grad_with_several_outputs_sums_their_contributions():
    x = tinygan.tensor(np.array([1.0, 2.0]), requires_grad=True)
    g, = tinygan.grad([(x * 2.0).sum(), (x * x).sum()], x)
    np.testing.assert_allclose(g.numpy(), 2.0 + 2 * np.array([1.0, 2.0]))


def test_graph_nodes_do_not_leak_intermediate_gradients_across_calls():
    x = tinygan.tensor(np.array([1.0]), requires_grad=True)
    y = F.tanh(x) * 2.0
    g1, = tinygan.grad(y.sum(), x, retain_graph=True)  # as in PyTorch: keep y's graph
    g2, = tinygan.grad(y.sum(), x)
    np.testing.assert_allclose(g1.numpy(), g2.numpy())


def test_broadcasting_gradient_is_summed_back_to_each_shape():
    a = tinygan.randn(4, 1, 3, requires_grad=True)
    b = tinygan.randn(5, 1, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (4, 1, 3) and b.grad.shape == (5, 1)
    np.testing.assert_allclose(a.grad.numpy(),
                               np.broadcast_to(b.detach().numpy().sum(), (4, 1, 3)), rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(),
                               np.full((5, 1), a.detach().numpy().sum()), rtol=1e-5)


def test_custom_function_forward_on_arrays_backward_in_tensor_ops():
    class Cube(tinygan.Function):
        """y = x^3; dy/dx = 3 x^2."""

        def forward(self, x):
            return x ** 3

        def backward(self, gy):
            x, = self.inputs
            return gy * 3.0 * x * x

    x = tinygan.tensor(np.array([1.0, -2.0]), requires_grad=True)
    y = Cube()(x)
    assert y.grad_fn is not None and type(y.grad_fn).__name__ == "Cube"
    d1, = tinygan.grad(y.sum(), x, create_graph=True)
    d2, = tinygan.grad(d1.sum(), x)
    np.testing.assert_allclose(d1.detach().numpy(), [3.0, 12.0])
    np.testing.assert_allclose(d2.numpy(), [6.0, -12.0])


def test_backward_returning_wrong_shape_is_a_clear_error():
    class Bad(tinygan.Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy.sum()

    x = tinygan.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Bad.backward gave a gradient of shape \(\) for an "
                                           r"input of shape \(3,\)"):
        Bad()(x).sum().backward()


def test_multiple_output_function_and_unused_outputs():
    class SplitTwo(tinygan.Function):
        def forward(self, x):
            return x[:2] * 1.0, x[2:] * 1.0

        def backward(self, g0, g1):
            return tinygan.cat([g0, g1])

    x = tinygan.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    first, _ = SplitTwo()(x)
    (first * 5.0).sum().backward()  # the second output gets a zero gradient
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0, 0.0])


def test_post_accumulate_grad_hooks_run_after_the_gradient_is_in_place():
    w = tinygan.tensor(np.array([1.0, 2.0]), requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    (w * w).sum().backward()
    (3 * w).sum().backward()  # accumulates: 2w + 3
    np.testing.assert_allclose(seen, [[2.0, 4.0], [5.0, 7.0]])
    handle.remove()
    w.sum().backward()
    assert len(seen) == 2
    tinygan.grad((w * w).sum(), w)  # grad() adds into no .grad: no hook
    assert len(seen) == 2
    with pytest.raises(RuntimeError, match="leaf tensors only"):
        (w * 2).register_post_accumulate_grad_hook(print)
