"""Reductions, shape ops, indexing, concatenation and matrix products: values against
NumPy, gradients against finite differences (float64, random cotangents)."""
import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from grad_inputs import away, distinct, leaf, transposed
from tinygan.testing import gradcheck, gradgradcheck


def strided(*shape, seed=0):
    t = tinygan.Tensor(away(*shape[:-1], 2 * shape[-1], seed=seed)[..., ::2],
                       requires_grad=True)
    assert not t.data.flags.c_contiguous
    return t


# ---------------------------------------------------------------- reductions

DIMS = [None, 0, 1, -1, (0, 2), (0, 1, 2)]


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("op", ["sum", "mean", "var", "amax", "amin", "logsumexp", "std"])
def test_reductions_over_dims(op, dim, keepdim):
    a = distinct(2, 3, 4)
    axis = dim if dim is None or isinstance(dim, int) else tuple(dim)
    reference = {
        "sum": lambda: a.sum(axis=axis, keepdims=keepdim),
        "mean": lambda: a.mean(axis=axis, keepdims=keepdim),
        "var": lambda: a.var(axis=axis, keepdims=keepdim, ddof=1),
        "std": lambda: a.std(axis=axis, keepdims=keepdim, ddof=1),
        "amax": lambda: a.max(axis=axis, keepdims=keepdim),
        "amin": lambda: a.min(axis=axis, keepdims=keepdim),
        "logsumexp": lambda: np.log(np.exp(a).sum(axis=axis, keepdims=keepdim)),
    }[op]()
    fn = lambda x: getattr(F, op)(x, dim, keepdim=keepdim)  # noqa: E731
    np.testing.assert_allclose(fn(tinygan.tensor(a)).numpy(), reference, rtol=1e-10)
    assert gradcheck(fn, [leaf(a)])


def test_var_without_correction_and_on_strided_input():
    a = away(3, 5)
    np.testing.assert_allclose(F.var(tinygan.tensor(a), 1, unbiased=False).numpy(), a.var(1))
    assert gradcheck(lambda x: F.var(x, 1, unbiased=False), [strided(3, 5)])
    assert gradcheck(lambda x: F.var(x, 0, keepdim=True), [transposed(3, 5)])


def test_reductions_on_non_contiguous_inputs():
    for x in (transposed(3, 4), strided(3, 4)):
        assert gradcheck(lambda t: F.sum(t, 0), [x])
        assert gradcheck(lambda t: F.mean(t, 1, keepdim=True), [x])
        assert gradcheck(lambda t: F.logsumexp(t, 1), [x])


def test_max_method_with_dim_is_differentiable_in_its_values():
    a = distinct(3, 4, seed=3)
    assert gradcheck(lambda x: x.max(1)[0], [leaf(a)])
    assert gradcheck(lambda x: x.min(0, keepdim=True)[0], [leaf(a)])
    assert gradcheck(lambda x: x.max(), [leaf(a)])


def test_max_shares_the_gradient_among_ties():
    x = tinygan.tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    F.amax(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.5, 0.5])


def test_logsumexp_is_stable_for_large_inputs():
    x = tinygan.tensor(np.array([[1000.0, 1000.0], [-1000.0, -1000.0]]))
    np.testing.assert_allclose(F.logsumexp(x, 1).numpy(), [1000 + np.log(2), -1000 + np.log(2)])


@pytest.mark.parametrize("op", ["sum", "mean"])
def test_reduction_second_derivative(op):
    fn = lambda x: getattr(F, op)(x * x, 1)  # noqa: E731
    assert gradgradcheck(fn, [leaf(away(2, 3))])
    assert gradgradcheck(lambda x: getattr(F, op)(x ** 3), [leaf(away(2, 3))])


# ---------------------------------------------------------------- shape ops

SHAPE_OPS = {
    "reshape": (lambda x: x.reshape(4, 6), lambda a: a.reshape(4, 6)),
    "reshape_-1": (lambda x: F.reshape(x, (-1, 3)), lambda a: a.reshape(-1, 3)),
    "view": (lambda x: x.view(24), lambda a: a.reshape(24)),
    "permute": (lambda x: x.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
    "transpose": (lambda x: x.transpose(0, 2), lambda a: a.swapaxes(0, 2)),
    "T": (lambda x: x.T, lambda a: a.T),
    "flatten": (lambda x: x.flatten(), lambda a: a.ravel()),
    "flatten_1": (lambda x: F.flatten(x, 1), lambda a: a.reshape(2, 12)),
    "unsqueeze": (lambda x: x.unsqueeze(1), lambda a: a[:, None]),
    "broadcast_to": (lambda x: F.broadcast_to(x[:, :1], (5, 2, 3, 4)),
                     lambda a: np.broadcast_to(a[:, :1], (5, 2, 3, 4))),
    "expand": (lambda x: x[:, :1].expand(2, 3, 4), lambda a: np.broadcast_to(a[:, :1], (2, 3, 4))),
    "sum_to": (lambda x: F.sum_to(x, (3, 1)), lambda a: a.sum(axis=(0, 2))[:, None]),
    "slice": (lambda x: x[1:, ::2, 1:3], lambda a: a[1:, ::2, 1:3]),
    "slice_neg_step": (lambda x: x[:, ::-1, -1], lambda a: a[:, ::-1, -1]),
    "int_index": (lambda x: x[1], lambda a: a[1]),
    "none_ellipsis": (lambda x: x[None, ..., 0], lambda a: a[None, ..., 0]),
    "int_array_repeats": (lambda x: x[[0, 1, 1, 0, 1]], lambda a: a[[0, 1, 1, 0, 1]]),
    "int_array_axis1": (lambda x: x[:, np.array([2, 2, 0])], lambda a: a[:, [2, 2, 0]]),
    "int_array_pairs": (lambda x: x[np.array([0, 1, 1]), np.array([2, 2, 2])],
                        lambda a: a[[0, 1, 1], [2, 2, 2]]),
    "tensor_index": (lambda x: x[tinygan.tensor([1, 1, 0])], lambda a: a[[1, 1, 0]]),
    "chunk": (lambda x: x.chunk(3, 2)[1], lambda a: a[:, :, 2:4]),
    "split": (lambda x: F.split(x, 2, 1)[-1], lambda a: a[:, 2:]),
}


@pytest.mark.parametrize("name", SHAPE_OPS)
def test_shape_op_value_and_gradient(name):
    fn, reference = SHAPE_OPS[name]
    a = away(2, 3, 4)
    np.testing.assert_array_equal(fn(tinygan.tensor(a)).numpy(), reference(a))
    assert gradcheck(fn, [leaf(a)])


@pytest.mark.parametrize("name", ["reshape", "permute", "flatten", "slice", "int_array_repeats",
                                  "broadcast_to"])
def test_shape_op_on_non_contiguous_input(name):
    fn = SHAPE_OPS[name][0]
    x = tinygan.Tensor(away(4, 3, 2).transpose(2, 1, 0), requires_grad=True)
    assert x.shape == (2, 3, 4) and not x.data.flags.c_contiguous
    assert gradcheck(fn, [x])


@pytest.mark.parametrize("name", ["reshape", "permute", "broadcast_to", "slice",
                                  "int_array_repeats"])
def test_shape_op_second_derivative(name):
    fn = SHAPE_OPS[name][0]
    assert gradgradcheck(lambda x: fn(x * x), [leaf(away(2, 3, 4))])


def test_getitem_gradient_accumulates_repeated_indices():
    x = tinygan.tensor(np.zeros(3), requires_grad=True)
    x[[0, 2, 2, 2]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 3.0])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_and_stack(dim):
    a, b, c = away(2, 3, seed=1), away(2, 3, seed=2), away(2, 3, seed=3)
    np.testing.assert_array_equal(
        tinygan.cat([tinygan.tensor(a), tinygan.tensor(b)], dim).numpy(),
        np.concatenate([a, b], dim))
    np.testing.assert_array_equal(
        tinygan.stack([tinygan.tensor(a), tinygan.tensor(b), tinygan.tensor(c)], dim).numpy(),
        np.stack([a, b, c], dim))
    assert gradcheck(lambda x, y: F.cat([x, y], dim), [leaf(a), leaf(b)])
    assert gradcheck(lambda x, y, z: F.stack([x, y, z], dim), [leaf(a), leaf(b), leaf(c)])


def test_cat_of_unequal_sizes_non_contiguous_and_constant_parts():
    x, y = transposed(2, 3), strided(2, 5)
    constant = tinygan.tensor(np.ones((2, 1)))
    assert gradcheck(lambda p, q: F.cat([p, constant, q], 1), [x, y])
    assert gradgradcheck(lambda p, q: F.cat([p * p, q], 1), [leaf(away(2, 3)), leaf(away(2, 2))])


# ---------------------------------------------------------------- matmul and linear

MATMUL_SHAPES = [((3, 4), (4, 5)), ((4,), (4, 2)), ((3, 4), (4,)), ((2, 3, 4), (4, 5)),
                 ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (3, 4, 2)), ((3, 4), (2, 4, 1))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES)
def test_matmul_batched_and_broadcasting(shapes):
    a, b = away(*shapes[0], seed=1), away(*shapes[1], seed=2)
    np.testing.assert_allclose((tinygan.tensor(a) @ tinygan.tensor(b)).numpy(), a @ b,
                               rtol=1e-12)
    assert gradcheck(F.matmul, [leaf(a), leaf(b)])


def test_matmul_on_non_contiguous_inputs():
    assert gradcheck(F.matmul, [transposed(3, 4), strided(4, 2)])
    assert gradcheck(lambda a, b: a @ b.T, [strided(3, 4), transposed(5, 4)])


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)),
                                    ((2, 3, 4), (2, 4, 2))])
def test_matmul_second_derivative(shapes):
    assert gradgradcheck(F.matmul, [leaf(away(*shapes[0], seed=1)),
                                    leaf(away(*shapes[1], seed=2))])


@pytest.mark.parametrize("x_shape", [(97, 5), (2, 49, 5)])
def test_linear_gradients_side_by_side_on_two_threads(monkeypatch, x_shape):
    # backward without a graph takes dx and dW side by side on the threads
    # (parallel.matmuls): the same derivatives, and the same bits as on one thread
    args = [leaf(away(*x_shape, seed=1)), leaf(away(4, 5, seed=2)), leaf(away(4, seed=3))]
    side_by_side = []
    products = tinygan.parallel.matmuls
    monkeypatch.setattr(tinygan.parallel, "matmuls",
                        lambda *pairs: side_by_side.append(len(pairs)) or products(*pairs))
    grads = []
    for threads in ("1", "2"):
        monkeypatch.setenv("TINYGAN_NUM_THREADS", threads)
        assert gradcheck(F.linear, args)
        for t in args:
            t.grad = None
        (F.linear(*args) * tinygan.tensor(away(*x_shape[:-1], 4, seed=4))).sum().backward()
        grads.append([t.grad.numpy() for t in args])
    assert side_by_side and set(side_by_side) == {2}  # dx and dW, together
    for one, two in zip(*grads):
        assert np.array_equal(one, two)


@pytest.mark.parametrize("x_shape", [(5,), (3, 5), (2, 3, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(x_shape, bias):
    a, w, b = away(*x_shape, seed=1), away(4, 5, seed=2), away(4, seed=3)
    ref = a @ w.T + (b if bias else 0)
    args = [leaf(a), leaf(w)] + ([leaf(b)] if bias else [])
    np.testing.assert_allclose(F.linear(*args).detach().numpy(), ref, rtol=1e-12)
    assert gradcheck(F.linear, args)
    assert gradgradcheck(F.linear, args)


def test_linear_on_non_contiguous_input_and_constant_weight():
    w = tinygan.tensor(away(4, 5, seed=2))
    assert gradcheck(lambda x: F.linear(x, w), [transposed(3, 5)])
    assert gradcheck(lambda x, weight: F.linear(x, weight), [strided(3, 5), leaf(away(4, 5))])


def test_matmul_of_two_vectors_is_a_scalar_with_both_gradients():
    a = tinygan.tensor(np.random.default_rng(1).standard_normal(3), requires_grad=True)
    b = tinygan.tensor(np.random.default_rng(2).standard_normal(3), requires_grad=True)
    y = a @ b
    assert y.shape == () and np.isclose(y.item(), a.data @ b.data)
    assert gradcheck(lambda a, b: a @ b, [a, b])


# ------------------------------------------------ dims outside [-ndim, ndim - 1] (PyTorch's rule)

_OUT_OF_RANGE = "Dimension out of range \\(expected to be in range of \\[-2, 1\\], but got 2\\)"


@pytest.mark.parametrize("op", [
    lambda x: x.sum(2), lambda x: x.mean(2), lambda x: x.amax(2), lambda x: x.max(2),
    lambda x: x.min(-3), lambda x: x.var(2), lambda x: x.std(2), lambda x: x.logsumexp(2),
    lambda x: F.softmax(x, 2), lambda x: F.log_softmax(x, 2), lambda x: x.argmax(2),
    lambda x: F.cat([x, x], 2), lambda x: x.squeeze(2), lambda x: x.transpose(0, 2),
    lambda x: x.permute(0, 2), lambda x: x.flatten(2), lambda x: x.unflatten(2, (1, 3)),
    lambda x: x.chunk(2, 2), lambda x: x.split(1, -3),
], ids=["sum", "mean", "amax", "max", "min", "var", "std", "logsumexp", "softmax",
        "log_softmax", "argmax", "cat", "squeeze", "transpose", "permute", "flatten",
        "unflatten", "chunk", "split"])
def test_a_dim_out_of_range_is_pytorchs_index_error(op):
    x = tinygan.randn(2, 3)
    with pytest.raises(IndexError, match=_OUT_OF_RANGE.replace("got 2", "got -?[23]")):
        op(x)


def test_stack_and_unsqueeze_take_one_dim_more():
    x = tinygan.randn(2, 3)
    assert F.stack([x, x], 2).shape == (2, 3, 2) and x.unsqueeze(-3).shape == (1, 2, 3)
    with pytest.raises(IndexError, match=r"range of \[-3, 2\], but got 3"):
        F.stack([x, x], 3)
    with pytest.raises(IndexError, match=r"range of \[-3, 2\], but got -4"):
        x.unsqueeze(-4)


def test_dims_in_range_still_wrap_and_a_repeated_dim_is_refused():
    x = tinygan.randn(2, 3)
    np.testing.assert_allclose(x.sum(-1).numpy(), x.numpy().sum(1), rtol=1e-6)
    assert tinygan.tensor(np.float32(3.0)).sum(0).item() == 3.0  # a 0-d tensor takes 0 and -1
    with pytest.raises(RuntimeError, match="more than once"):
        x.sum((1, -1))
