"""Module bookkeeping: registration order, modes, devices, state_dict round trips, repr."""
import copy
from collections import OrderedDict

import numpy as np
import pytest

import tinygan
from tinygan import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))
        self.register_buffer("count", np.zeros((), dtype=np.int64))
        self.register_buffer("scratch", np.zeros(3, dtype=np.float32), persistent=False)
        self.main = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.LeakyReLU(0.2))
        self.head = nn.Linear(4, 1, bias=False)
        self.not_a_parameter = tinygan.zeros(2)

    def forward(self, x):
        return self.head(self.main(x * self.scale))


def test_parameters_in_registration_order_with_dotted_names():
    names = [n for n, _ in Block().named_parameters()]
    assert names == ["scale", "main.0.weight", "main.0.bias", "main.1.weight", "main.1.bias",
                     "head.weight"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in Block().parameters())
    assert all(p.dtype == np.float32 for p in Block().parameters())


def test_buffers_children_modules():
    b = Block()
    assert [n for n, _ in b.named_buffers()] == ["count", "scratch", "main.1.running_mean",
                                                 "main.1.running_var",
                                                 "main.1.num_batches_tracked"]
    assert [n for n, _ in b.named_children()] == ["main", "head"]
    assert [type(m).__name__ for m in b.modules()] == ["Block", "Sequential", "Linear",
                                                       "BatchNorm1d", "LeakyReLU", "Linear"]
    assert "not_a_parameter" not in dict(b.named_parameters())


def test_shared_parameter_listed_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2


def test_state_dict_keys_and_persistence():
    sd = Block().state_dict()
    assert isinstance(sd, OrderedDict)
    assert list(sd) == ["scale", "count", "main.0.weight", "main.0.bias", "main.1.weight",
                        "main.1.bias", "main.1.running_mean", "main.1.running_var",
                        "main.1.num_batches_tracked", "head.weight"]
    assert not any(t.requires_grad for t in sd.values())  # detached: .numpy() works


def test_load_state_dict_round_trip_copies_in_place():
    a, b = Block(), Block()
    target = b.main[0].weight
    b.load_state_dict(a.state_dict())
    assert b.main[0].weight is target  # same object: an optimizer holding it still works
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va.numpy(), vb.numpy())


def test_load_state_dict_accepts_arrays():
    a = nn.Linear(3, 2)
    a.load_state_dict({"weight": np.ones((2, 3)), "bias": np.zeros(2)})
    assert a.weight.dtype == np.float32 and float(a.weight.data.sum()) == 6.0


def test_load_state_dict_missing_key_is_listed():
    sd = Block().state_dict()
    del sd["main.0.bias"], sd["head.weight"]
    before = Block()
    w = before.main[1].weight.data.copy()
    with pytest.raises(RuntimeError, match=r'Missing key\(s\).*"main.0.bias", "head.weight"'):
        before.load_state_dict(sd)
    np.testing.assert_array_equal(before.main[1].weight.data, w)  # nothing half-loaded


def test_load_state_dict_unexpected_key_is_listed():
    sd = Block().state_dict()
    sd["main.7.weight"] = tinygan.zeros(3)
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\).*"main.7.weight"'):
        Block().load_state_dict(sd)


def test_load_state_dict_wrong_shape_names_both_shapes():
    sd = Block().state_dict()
    sd["main.0.weight"] = tinygan.zeros(3, 4)
    with pytest.raises(RuntimeError, match=r"size mismatch for main.0.weight.*\(3, 4\).*\(4, 3\)"):
        Block().load_state_dict(sd)
    with pytest.raises(RuntimeError, match="size mismatch"):
        Block().load_state_dict(sd, strict=False)


def test_load_state_dict_non_strict_returns_keys():
    sd = Block().state_dict()
    del sd["scale"]
    sd["extra"] = tinygan.zeros(1)
    missing, unexpected = Block().load_state_dict(sd, strict=False)
    assert missing == ["scale"] and unexpected == ["extra"]


def test_train_eval_propagates():
    b = Block()
    assert b.training and b.main[1].training
    assert b.eval() is b
    assert not any(m.training for m in b.modules())
    b.train()
    assert all(m.training for m in b.modules())


def test_to_moves_in_place_and_converts_dtype():
    b = Block()
    p = b.main[0].weight
    assert b.to("cpu") is b and b.main[0].weight is p
    b.double()
    assert p.dtype == np.float64 and b.main[1].running_mean.dtype == np.float64
    assert b.main[1].num_batches_tracked.dtype == np.int64  # integers stay integers
    with pytest.raises(ValueError, match="unknown device"):
        b.to("tpu")


def test_zero_grad_sets_none_and_requires_grad_freezes():
    lin = nn.Linear(3, 2)
    lin(tinygan.randn(4, 3)).sum().backward()
    assert lin.weight.grad is not None
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None
    lin.requires_grad_(False)
    assert not any(p.requires_grad for p in lin.parameters())


def test_apply_visits_children_first():
    seen = []
    nn.Sequential(nn.Linear(1, 1), nn.Tanh()).apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Tanh", "Sequential"]


def test_apply_for_custom_init():
    def dcgan_init(m):
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
    net = nn.Sequential(nn.Conv2d(3, 64, 4), nn.LeakyReLU(0.2)).apply(dcgan_init)
    assert abs(float(net[0].weight.data.std()) - 0.02) < 0.002


def test_setattr_rules():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.weight = tinygan.zeros(2, 2)  # a plain tensor cannot replace a parameter
    m.register_buffer("stat", tinygan.zeros(2))
    m.stat = np.ones(2, dtype=np.float32)  # assigning to a buffer name updates the buffer
    assert isinstance(m.stat, tinygan.Tensor) and "stat" in dict(m.named_buffers())
    del m.stat
    assert "stat" not in dict(m.named_buffers())
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        m.nothing


def test_call_runs_forward_and_hooks():
    m = nn.Linear(2, 3)
    calls = []
    handle = m.register_forward_pre_hook(lambda mod, args: calls.append("pre"))
    m.register_forward_hook(lambda mod, args, out: out * 0)
    y = m(tinygan.randn(4, 2))
    assert calls == ["pre"] and float(abs(y).sum()) == 0.0
    handle.remove()
    m(tinygan.randn(4, 2))
    assert calls == ["pre"]


def test_sequential_indexing_len_iteration():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and isinstance(seq[1], nn.ReLU)
    assert [type(m) for m in seq] == [nn.Linear, nn.ReLU, nn.Linear]
    assert isinstance(seq[:2], nn.Sequential) and len(seq[:2]) == 2
    assert seq(tinygan.randn(5, 2)).shape == (5, 1)
    with pytest.raises(IndexError):
        seq[3]
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]


def test_module_list_registers_parameters():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])

    s = Stack()
    assert len(s.layers) == 3 and len(list(s.parameters())) == 6
    s.layers.append(nn.Linear(2, 1))
    assert [n for n, _ in s.named_parameters()][-1] == "layers.3.bias"


def test_deepcopy_is_independent():
    # GAN training keeps an EMA copy of the generator
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    twin = copy.deepcopy(net)
    twin[0].weight.data += 1.0
    assert not np.allclose(twin[0].weight.data, net[0].weight.data)
    assert twin(tinygan.randn(4, 2)).shape == (4, 2)


def test_repr_is_a_tree():
    text = repr(nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1, bias=False), nn.BatchNorm2d(8),
                              nn.Sequential(nn.LeakyReLU(0.2), nn.Flatten())))
    assert text == (
        "Sequential(\n"
        "  (0): Conv2d(3, 8, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)\n"
        "  (1): BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, "
        "track_running_stats=True)\n"
        "  (2): Sequential(\n"
        "    (0): LeakyReLU(negative_slope=0.2)\n"
        "    (1): Flatten(start_dim=1, end_dim=-1)\n"
        "  )\n"
        ")")


def test_parameter_must_be_float():
    with pytest.raises(TypeError, match="floating-point"):
        nn.Parameter(np.arange(3))
    assert "Parameter containing" in repr(nn.Parameter(np.zeros(2)))
