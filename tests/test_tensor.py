"""Tensor: creation, dtypes, devices, methods, grad mode, and the errors bad input gets."""
import numpy as np
import pytest

import tinygan
import tinygan.functional as F


# ---------------------------------------------------------------- creation and dtypes

def test_creation_functions_default_to_float32():
    for t in (tinygan.randn(2, 3), tinygan.rand(2, 3), tinygan.zeros(2, 3), tinygan.ones(2, 3),
              tinygan.empty(2, 3), tinygan.full((2, 3), 1.5), tinygan.zeros((2, 3))):
        assert t.dtype == np.float32
        assert t.shape == (2, 3)
        assert t.device == "cpu"


def test_creation_with_dtype_and_like():
    assert tinygan.randn(4, dtype="float64").dtype == np.float64
    x = tinygan.randn(2, 2)
    assert tinygan.zeros_like(x).dtype == np.float32
    assert tinygan.ones_like(x).numpy().sum() == 4
    assert tinygan.randn_like(x).shape == (2, 2)
    assert tinygan.arange(5).dtype == np.int64
    assert tinygan.arange(0.0, 1.0, 0.25).dtype == np.float32
    idx = tinygan.randint(0, 10, size=(100,))
    assert idx.dtype == np.int64 and 0 <= idx.numpy().min() and idx.numpy().max() < 10


def test_tensor_keeps_numpy_dtype_and_makes_python_numbers_float32():
    assert tinygan.tensor(np.zeros(3)).dtype == np.float64
    assert tinygan.tensor(np.zeros(3, np.float32)).dtype == np.float32
    assert tinygan.tensor([1.0, 2.0]).dtype == np.float32
    assert tinygan.tensor(1.5).dtype == np.float32
    assert tinygan.tensor([1, 2]).dtype == np.int64
    assert tinygan.tensor([True, False]).dtype == np.bool_
    assert tinygan.tensor([1, 2], dtype="float32").dtype == np.float32


def test_tensor_copies_but_from_numpy_shares():
    a = np.zeros(3, np.float32)
    copied, shared = tinygan.tensor(a), tinygan.from_numpy(a)
    a[0] = 7
    assert copied.numpy()[0] == 0
    assert shared.numpy()[0] == 7


def test_ops_on_float32_stay_float32_and_python_scalars_do_not_upcast():
    x = tinygan.randn(3, 4)
    w = tinygan.randn(5, 4)
    results = [x + 1.0, 2.0 * x, x - 1, 1 - x, x / 3.0, 1.0 / (x.abs() + 1), x ** 2, x.abs() ** 0.5,
               2.0 ** x, F.exp(x), F.tanh(x), F.sigmoid(x), F.relu(x), F.leaky_relu(x, 0.2),
               F.softplus(x), x.mean(), x.var(), x.sum(1), F.softmax(x, 1),
               F.log_softmax(x, 1), F.linear(x, w), x @ w.T, F.dropout(x, 0.5),
               F.mse_loss(x, tinygan.zeros(3, 4)),
               F.binary_cross_entropy_with_logits(x, tinygan.ones(3, 4)),
               x * np.float64(2.0), np.float64(2.0) * x]
    for r in results:
        assert r.dtype == np.float32, r
    img = tinygan.randn(2, 3, 6, 6)
    k = tinygan.randn(4, 3, 3, 3)
    assert F.conv2d(img, k, padding=1).dtype == np.float32
    assert F.conv_transpose2d(img, tinygan.randn(3, 2, 3, 3), stride=2).dtype == np.float32
    assert F.avg_pool2d(img, 2).dtype == np.float32
    assert F.max_pool2d(img, 2).dtype == np.float32
    assert F.batch_norm(img, None, None, training=True).dtype == np.float32


def test_gradients_are_float32_for_float32_leaves():
    x = tinygan.randn(3, 4, requires_grad=True)
    (F.tanh(x * 3.0).sum() * 0.5).backward()
    assert x.grad.dtype == np.float32


# ---------------------------------------------------------------- methods

def test_sum_mean_with_dim_and_keepdim():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = tinygan.tensor(a)
    np.testing.assert_allclose(x.sum().item(), a.sum())
    np.testing.assert_allclose(x.sum(1).numpy(), a.sum(1))
    assert x.sum(1, keepdim=True).shape == (2, 1, 4)
    assert x.sum((0, 2)).shape == (3,)
    assert x.sum(-1).shape == (2, 3)
    np.testing.assert_allclose(x.mean(2).numpy(), a.mean(2))
    assert x.mean((0, 1), keepdim=True).shape == (1, 1, 4)
    np.testing.assert_allclose(x.var(1).numpy(), a.var(1, ddof=1), rtol=1e-6)


def test_max_with_dim_returns_values_and_indices_like_torch():
    a = np.array([[1.0, 5.0, 3.0], [7.0, 2.0, 4.0]], np.float32)
    x = tinygan.tensor(a)
    assert x.max().item() == 7.0
    values, indices = x.max(1)
    np.testing.assert_array_equal(values.numpy(), [5.0, 7.0])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])
    values, indices = x.max(0, keepdim=True)
    assert values.shape == indices.shape == (1, 3)
    np.testing.assert_array_equal(indices.numpy(), [[1, 0, 1]])
    values, indices = x.min(1)
    np.testing.assert_array_equal(values.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(indices.numpy(), [0, 1])
    np.testing.assert_array_equal(x.amax(0).numpy(), [7.0, 5.0, 4.0])
    np.testing.assert_array_equal(x.argmax(1).numpy(), [1, 0])


def test_shape_methods():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = tinygan.tensor(a)
    np.testing.assert_array_equal(x.reshape(6, 4).numpy(), a.reshape(6, 4))
    np.testing.assert_array_equal(x.reshape((4, -1)).numpy(), a.reshape(4, -1))
    np.testing.assert_array_equal(x.view(2, 12).numpy(), a.reshape(2, 12))
    np.testing.assert_array_equal(x.permute(2, 0, 1).numpy(), a.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.permute((1, 2, 0)).numpy(), a.transpose(1, 2, 0))
    np.testing.assert_array_equal(x.transpose(0, 2).numpy(), a.swapaxes(0, 2))
    np.testing.assert_array_equal(x.flatten().numpy(), a.ravel())
    np.testing.assert_array_equal(x.flatten(1).numpy(), a.reshape(2, 12))
    np.testing.assert_array_equal(x.T.numpy(), a.T)
    assert x.unsqueeze(0).shape == (1, 2, 3, 4)
    assert x.unsqueeze(0).squeeze(0).shape == (2, 3, 4)
    assert x[:, 1].shape == (2, 4)
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.numel() == 24
    assert x.dim() == x.ndim == 3 and len(x) == 2


def test_item_numpy_tolist_and_conversions():
    x = tinygan.tensor([[2.5]])
    assert x.item() == 2.5 and isinstance(x.item(), float)
    assert float(x) == 2.5 and int(tinygan.tensor(3)) == 3
    assert isinstance(x.numpy(), np.ndarray)
    assert x.tolist() == [[2.5]]
    assert np.asarray(x).shape == (1, 1)
    with pytest.raises(ValueError, match="one element"):
        tinygan.zeros(2).item()
    with pytest.raises(RuntimeError, match="detach"):
        tinygan.zeros(2, requires_grad=True).numpy()


def test_to_device_and_dtype():
    x = tinygan.randn(2, 3)
    assert x.to("cpu") is x
    assert x.cpu() is x
    assert x.to(np.float64).dtype == np.float64
    assert x.to(tinygan.float64).dtype == np.float64
    assert x.to(dtype="float64").dtype == np.float64
    assert x.double().float().dtype == np.float32
    with pytest.raises(ValueError, match="unknown device"):
        x.to("tpu")


def test_to_dtype_is_differentiable():
    x = tinygan.randn(3, requires_grad=True)
    (x.to(np.float64) * 2.0).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), 2.0)


def test_comparisons_give_boolean_tensors_without_grad():
    x = tinygan.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = tinygan.tensor([3.0, 2.0, 1.0])
    np.testing.assert_array_equal((x < y).numpy(), [True, False, False])
    np.testing.assert_array_equal((x <= y).numpy(), [True, True, False])
    np.testing.assert_array_equal((x > 2.0).numpy(), [False, False, True])
    np.testing.assert_array_equal((x >= 2.0).numpy(), [False, True, True])
    np.testing.assert_array_equal((x == y).numpy(), [False, True, False])
    np.testing.assert_array_equal((x != y).numpy(), [True, False, True])
    assert (x > 0).dtype == np.bool_ and not (x > 0).requires_grad
    assert len({x, y}) == 2  # tensors stay hashable


def test_repr_names_grad_fn():
    x = tinygan.tensor([1.0], requires_grad=True)
    assert "requires_grad=True" in repr(x)
    assert "grad_fn=<Mul>" in repr(x * 2.0)
    assert repr(tinygan.tensor([1.0])).startswith("tensor(")


# ---------------------------------------------------------------- grad mode

def test_no_grad_records_nothing():
    x = tinygan.randn(3, requires_grad=True)
    with tinygan.no_grad():
        y = (x * 2.0).exp().sum()
        assert not tinygan.is_grad_enabled()
    assert tinygan.is_grad_enabled()
    assert y.creator is None and not y.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    with pytest.raises(RuntimeError, match="was not used"):
        tinygan.grad(y, x)


def test_no_grad_as_decorator_and_nested_enable_grad():
    x = tinygan.randn(3, requires_grad=True)

    @tinygan.no_grad()
    def f(t):
        with tinygan.enable_grad():
            inner = t * 2.0
        return inner, t * 3.0

    inner, outer = f(x)
    assert inner.requires_grad and not outer.requires_grad
    with tinygan.set_grad_enabled(False):
        assert not (x + 1.0).requires_grad


def test_detach_shares_data_and_leaves_the_graph():
    x = tinygan.randn(3, requires_grad=True)
    y = x * 2.0
    d = y.detach()
    assert d.creator is None and not d.requires_grad
    assert np.shares_memory(d.data, y.data)
    (d * x).sum().backward()  # no gradient flows through d
    np.testing.assert_allclose(x.grad.numpy(), d.numpy())


def test_requires_grad_propagates_only_from_inputs_that_need_it():
    a = tinygan.randn(2)
    b = tinygan.randn(2, requires_grad=True)
    assert not (a * 2.0).requires_grad
    assert (a * b).requires_grad and (a * b).grad_fn is not None
    assert b.is_leaf and not (a * b).is_leaf
    a.requires_grad_()
    assert a.requires_grad


# ---------------------------------------------------------------- errors

def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients.*int64"):
        tinygan.tensor([1, 2, 3], requires_grad=True)
    with pytest.raises(TypeError, match="floating-point"):
        tinygan.arange(3).requires_grad_()


def test_tensor_rejects_non_arrays():
    with pytest.raises(TypeError, match="numpy or cupy array"):
        tinygan.Tensor([1.0, 2.0])


def test_broadcast_mismatch_names_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\)"):
        tinygan.randn(2, 3) + tinygan.randn(4)
    with pytest.raises(ValueError, match=r"mul: shapes \(2, 3\) and \(3, 2\)"):
        tinygan.randn(2, 3) * tinygan.randn(3, 2)
    with pytest.raises(ValueError, match=r"broadcast_to.*\(2, 3\).*\(4, 4\)"):
        F.broadcast_to(tinygan.randn(2, 3), (4, 4))


def test_matmul_mismatch_names_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\)"):
        tinygan.randn(2, 3) @ tinygan.randn(4, 5)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3, 4\) and \(5, 4, 2\)"):
        tinygan.randn(2, 3, 4) @ tinygan.randn(5, 4, 2)
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 3\).*weight of shape "
                                         r"\(5, 4\)"):
        F.linear(tinygan.randn(2, 3), tinygan.randn(5, 4))


def test_conv_mismatch_names_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"conv2d: input of shape \(1, 3, 8, 8\).*weight of "
                                         r"shape \(4, 2, 3, 3\)"):
        F.conv2d(tinygan.randn(1, 3, 8, 8), tinygan.randn(4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"conv_transpose2d: input of shape \(1, 3, 4, 4\).*"
                                         r"weight of shape \(2, 4, 3, 3\)"):
        F.conv_transpose2d(tinygan.randn(1, 3, 4, 4), tinygan.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="too small"):
        F.conv2d(tinygan.randn(1, 1, 2, 2), tinygan.randn(1, 1, 3, 3))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(tinygan.randn(1, 1, 2, 2), tinygan.randn(1, 1, 3, 3), stride=2,
                           output_padding=2)


def test_other_shape_errors_name_the_op():
    with pytest.raises(ValueError, match=r"reshape: .*\(2, 3\).*\(4,\)"):
        tinygan.randn(2, 3).reshape(4)
    with pytest.raises(ValueError, match="cat"):
        tinygan.cat([tinygan.randn(2, 3), tinygan.randn(2, 4)], 0)
    with pytest.raises(ValueError, match=r"mse_loss: input of shape \(2,\) and target of shape "
                                         r"\(3,\)"):
        F.mse_loss(tinygan.randn(2), tinygan.randn(3))
    with pytest.raises(ValueError, match="permute"):
        tinygan.randn(2, 3).permute(0, 0)


def test_backward_on_non_scalar_needs_gradient():
    y = tinygan.randn(3, requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match=r"non-scalar tensor of shape \(3,\) needs `gradient`"):
        y.backward()
    with pytest.raises(RuntimeError, match="gradient of shape"):
        y.backward(tinygan.ones(4))
