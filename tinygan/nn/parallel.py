"""Data parallelism over processes: DistributedDataParallel and SyncBatchNorm.

N ranks (tinygan.distributed) each hold a replica of the model and an equal share B_r of
every batch B. A loss that is a mean over samples splits into the shares' losses,

    L(B) = 1/|B| sum_{i in B} l_i = 1/N sum_r L(B_r),  so  grad L(B) = 1/N sum_r grad L(B_r):

the whole batch's gradient is the average of the ranks' gradients. DistributedDataParallel
makes every rank's .grad that average, so every rank takes the step one process would
take on the whole batch, and the replicas, equal at the start, stay equal.

BatchNorm breaks the split: it normalises with its own batch's mean and variance, so a
rank's outputs would depend on its share alone. SyncBatchNorm takes them over every
rank's share (all-reduces of per-channel sums), and its backward sums over every rank the
two per-channel means that the gradient of x needs (functional/norm.py has the maths).
all_gather_rows gives every rank the whole global batch of a tensor, differentiably (for
feature matching, whose loss compares the global batch's mean features).
"""
from __future__ import annotations

import numpy as np

from .. import backend, distributed
from .._tensor import Tensor
from ..autograd import Function, is_grad_enabled
from ..functional.norm import (BatchNorm, _channel_shape, _input_grad, _stat_axes,
                              update_running_stats)
from ..functional.reduce import sum
from ..functional.shape import reshape
from ..kernels.reduce import sum_axes
from .module import Module
from .norm import _BatchNorm

#: megabytes of gradients per all-reduce. PyTorch's 25 would put each of tinygan's GAN
#: networks (0.3 to 15 MB) in one bucket; 1 (PyTorch's first bucket) gives them 1 to 5.
DEFAULT_BUCKET_CAP_MB = 1.0


# ----------------------------------------------------------- DistributedDataParallel


class _Bucket:
    """Parameters whose gradients are all-reduced in one call, through one flat array:
    their gradients end to end, then one slot per parameter, 1 where it got a gradient."""

    def __init__(self, params: list):
        self.params, self.slices, n = params, [], 0
        for p in params:
            self.slices.append(slice(n, n + p.numel()))
            n += p.numel()
        self.numel, self.flat = n, None

    def buffer(self, like):
        """The flat array, made (once) on the device and in the dtype of `like`."""
        if (self.flat is None or type(self.flat) is not type(like)
                or self.flat.dtype != like.dtype):
            self.flat = backend.get_array_module(like).empty(self.numel + len(self.params),
                                                             dtype=like.dtype)
        return self.flat


def _buckets_of(params: list, cap_bytes: float) -> list:
    """Parameters in reverse order (as backward meets them), one dtype and device per
    bucket; a bucket closes once it holds cap_bytes (as PyTorch's: it may go one
    parameter over)."""
    buckets, open_, nbytes = [], {}, {}
    for p in reversed(params):
        key = (p.dtype, p.device)
        open_.setdefault(key, []).append(p)
        nbytes[key] = nbytes.get(key, 0) + p.data.nbytes
        if nbytes[key] >= cap_bytes:
            buckets.append(_Bucket(open_.pop(key)))
            nbytes[key] = 0
    return buckets + [_Bucket(b) for b in open_.values()]


class DistributedDataParallel(Module):
    """The module, replicated: after backward() through it, every parameter's .grad is the
    average over the ranks (as torch.nn.parallel.DistributedDataParallel).

    - Construction broadcasts rank 0's parameters and buffers, so the replicas start equal;
      with broadcast_buffers (the default) rank 0's buffers (running statistics) are
      broadcast again before each forward that records a graph.
    - Gradients travel in buckets of about bucket_cap_mb megabytes, one all-reduce each.
    - Each forward reads from its outputs' graph which parameters a backward will reach.
      A parameter's post-accumulate-grad hook marks it ready; a bucket is reduced once
      each of its parameters is ready or was reached by no forward. (D's update, on
      G(z).detach(), reaches none of G's: G's buckets wait for G's update.) Every rank
      reduces the same buckets in the same order, so none waits for a call another never
      makes; a parameter that got no gradient on any rank keeps its .grad.
    - A forward runs inside distributed.global_batch(): its input is this rank's share of
      a global batch, and random ops (dropout) draw for the global batch.
    - Every rank runs the same forwards and backwards. Call the wrapper, not .module, for
      what is backpropagated. `.module` (or unwrap(model)) is the model itself, what a
      checkpoint stores: the wrapper's state_dict() names every key "module.<key>", as
      PyTorch's does.
    """

    def __init__(self, module: Module, broadcast_buffers: bool = True,
                 bucket_cap_mb: float = DEFAULT_BUCKET_CAP_MB):
        super().__init__()
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        _broadcast_coalesced(list(module.parameters()) + list(module.buffers()), src=0)
        params = list(module.parameters())
        self._names = {id(p): name for name, p in module.named_parameters()}
        self._params = {id(p): p for p in params}
        self.buckets = _buckets_of(params, bucket_cap_mb * 2 ** 20)
        self._expected: set = set()  # ids of the parameters the coming backward reaches
        self._arrived: set = set()   # ... and of those whose gradient has come
        self._next = 0               # the next bucket to reduce
        self._hooks = [p.register_post_accumulate_grad_hook(self._grad_ready) for p in params]

    def forward(self, *args, **kwargs):
        recording = is_grad_enabled()
        if recording and self.broadcast_buffers:
            _broadcast_coalesced(list(self.module.buffers()), src=0)
        with distributed.global_batch():
            out = self.module(*args, **kwargs)
        if recording:
            self._expect(out)
        return out

    def _expect(self, out) -> None:
        reached = _parameters_reached(out, self._params)
        if not reached:
            return
        if self._arrived:  # a backward came and went, and some buckets are still waiting
            missing = sorted(self._names[i] for i in self._expected - self._arrived)
            raise RuntimeError(
                f"DistributedDataParallel: the last backward gave no gradient to "
                f"{', '.join(missing)}, which a forward through the wrapper used; "
                "backpropagate through every output of a forward before the next one")
        self._expected |= reached

    def _grad_ready(self, p) -> None:
        if id(p) not in self._expected or id(p) in self._arrived:
            raise RuntimeError(
                f"DistributedDataParallel: {self._names[id(p)]} got a gradient that no "
                "forward through the wrapper waits for: run one forward through the "
                "wrapper (not .module) before each backward")
        self._arrived.add(id(p))
        while self._next < len(self.buckets) and self._ready(self.buckets[self._next]):
            self._reduce(self.buckets[self._next])
            self._next += 1
        if self._next == len(self.buckets):
            self._expected, self._arrived, self._next = set(), set(), 0

    def _ready(self, bucket: _Bucket) -> bool:
        return all(id(p) in self._arrived or id(p) not in self._expected
                   for p in bucket.params)

    def _reduce(self, bucket: _Bucket) -> None:
        """Sum the bucket's gradients (zeros where none came) and their 'got one' slots
        over the ranks; each parameter some rank had a gradient for gets sum / N."""
        flat, n = bucket.buffer(bucket.params[0].data), bucket.numel
        got = [id(p) in self._arrived for p in bucket.params]
        for p, part, has in zip(bucket.params, bucket.slices, got):
            flat[part].reshape(p.shape)[...] = p.grad.data if has else 0
        flat[n:] = backend.get_array_module(flat).asarray(got, dtype=flat.dtype)  # one copy
        distributed.all_reduce(flat)
        size = distributed.get_world_size()
        for p, part, count in zip(bucket.params, bucket.slices, backend.to_numpy(flat[n:])):
            if count > 0:
                p.grad = Tensor((flat[part] / size).reshape(p.shape))


def unwrap(module: Module) -> Module:
    """The model inside a DistributedDataParallel (its .module), else module itself."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def _broadcast_coalesced(tensors: list, src: int) -> None:
    """Every rank's tensors become rank src's, in one broadcast per dtype and device."""
    if distributed.get_world_size() == 1:
        return
    groups: dict = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    for group in groups.values():
        flat = group[0].xp.concatenate([t.data.reshape(-1) for t in group])
        distributed.broadcast(flat, src)
        start = 0
        for t in group:
            t.data[...] = flat[start:start + t.numel()].reshape(t.shape)
            start += t.numel()


def _parameters_reached(outputs, params: dict) -> set:
    """The ids of the parameters (id -> parameter) requiring grad that the graph of
    `outputs` (a tensor, or a tuple, list or dict of them) leads back to."""
    wanted = {i for i, p in params.items() if p.requires_grad}
    found, seen = set(), set()
    stack = [t.creator for t in _tensors_in(outputs) if t.creator is not None]
    while stack and len(found) < len(wanted):
        f = stack.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        for x in f.__dict__.get("inputs", ()):  # a Function freed by a backward has none
            if x.creator is not None:
                stack.append(x.creator)
            elif id(x) in wanted:
                found.add(id(x))
    return found


def _tensors_in(outputs):
    if isinstance(outputs, Tensor):
        yield outputs
    elif isinstance(outputs, (tuple, list)):
        for o in outputs:
            yield from _tensors_in(o)
    elif isinstance(outputs, dict):
        for o in outputs.values():
            yield from _tensors_in(o)


# ------------------------------------------------------------------------ SyncBatchNorm


class AllReduceSum(Function):
    """y = x_0 + ... + x_{N-1} on every rank. The ranks' losses add up, so the gradient of
    x_r is the sum over the ranks of the gradients of their y: the same all-reduce."""

    def forward(self, x):
        y = x.copy()
        distributed.all_reduce(y)
        return y

    def backward(self, gy):
        return all_reduce_sum(gy)


def all_reduce_sum(x: Tensor) -> Tensor:
    """The sum of x over the ranks, differentiable (x itself in a world of one)."""
    return x if distributed.get_world_size() == 1 else AllReduceSum()(x)


class AllGatherRows(Function):
    """y = [x_0; x_1; ...; x_{N-1}], every rank's rows in rank order, on every rank. The
    ranks' losses add up, so x_r's gradient is the sum over the ranks of their gy's rows r:
    an all-reduce of gy, of which rank r keeps its rows."""

    def forward(self, x):
        parts = backend.get_array_module(x).empty((distributed.get_world_size(),) + x.shape,
                                                  dtype=x.dtype)
        distributed.all_gather(list(parts), x)
        return parts.reshape((-1,) + x.shape[1:])

    def backward(self, gy):
        n = gy.shape[0] // distributed.get_world_size()
        rank = distributed.get_rank()
        return all_reduce_sum(gy)[rank * n:(rank + 1) * n]


def all_gather_rows(x: Tensor) -> Tensor:
    """Every rank's x stacked along the first axis, differentiable (x in a world of one)."""
    return x if distributed.get_world_size() == 1 else AllGatherRows()(x)


class SyncBatchNormFunction(BatchNorm):
    """Training-mode BatchNorm with the global batch's mean and var (given, as BatchNorm's);
    its gradient sums the per-channel means of gy and gy xhat over the ranks."""

    def __init__(self, mean, var, eps, count: int):
        super().__init__(mean, var, eps)
        self.count = count  # values per channel over every rank

    def backward(self, gy):
        x, *affine = self.inputs
        grads = SyncBatchNormGrad(self.centre, self.inv_std, self.xhat, self.eps, self.count)(
            x, gy, *affine[:1])
        return grads[:len(self.inputs)]


class SyncBatchNormGrad(Function):
    """(dx, dw, db) of SyncBatchNormFunction from (x, gy, w), on arrays.

    With bars the means over every rank's m values of a channel, dx = w s P(gy),
    P(g) = g - bar(g) - xhat bar(g xhat), needs two sums all-reduced; dw = sum gy xhat and
    db = sum gy are this rank's part of the parameters' gradients (DistributedDataParallel
    adds the parts). The backward is BatchNormGrad's with global bars, and with ggw, a
    cotangent for this rank's dw only, kept inside the projection: d<ggw, dw>/dx =
    s P(ggw gy), which is ggw s P(gy) in one process.
    """

    def __init__(self, centre, inv_std, xhat, eps, count: int):
        self.centre, self.inv_std, self.xhat = centre, inv_std, xhat
        self.eps, self.count = eps, count

    def forward(self, x, gy, weight=None):
        axes, shape, c = _stat_axes(x), _channel_shape(x), x.shape[1]
        xhat = self.xhat
        if xhat is None:  # the forward kept none (see functional/norm.py's _normalize)
            xhat = x - self.centre
            xhat *= self.inv_std
        gb = sum_axes(gy, axes, keepdims=True)
        gw = sum_axes(gy * xhat, axes, keepdims=True)
        sums = backend.get_array_module(gy).concatenate([gb.reshape(-1), gw.reshape(-1)])
        distributed.all_reduce(sums)
        w = gy.dtype.type(1) if weight is None else weight.reshape(shape)
        gx = _input_grad(gy, xhat, self.inv_std, w, (sums[:c] / self.count).reshape(shape),
                         (sums[c:] / self.count).reshape(shape))
        return gx, gw.reshape(-1), gb.reshape(-1)

    def backward(self, ggx, ggw, ggb):
        x, gy, *weight = self.inputs
        axes, shape, needs = _stat_axes(x), _channel_shape(x), self.needs_input_grad

        def bar(v):  # the mean of a channel over every rank
            return all_reduce_sum(sum(v, axes, keepdim=True)) / self.count

        xc = x - bar(x)
        s = (bar(xc * xc) + self.eps) ** -0.5
        xhat = xc * s

        def project(v):
            return v - bar(v) - xhat * bar(v * xhat)

        w = reshape(weight[0], shape) if weight else 1.0
        ggw, ggb = reshape(ggw, shape), reshape(ggb, shape)
        p_gy, p_ggx = project(gy), project(ggx)
        g_x = s * (project(ggw * gy) - w * s * (bar(ggx * p_gy) * xhat + bar(gy * xhat) * p_ggx
                                                + bar(ggx * xhat) * p_gy)) if needs[0] else None
        g_gy = w * s * p_ggx + ggw * xhat + ggb if needs[1] else None
        if not weight:
            return g_x, g_gy
        return g_x, g_gy, sum(ggx * s * p_gy, axes) if needs[2] else None


def sync_batch_norm(x: Tensor, running_mean, running_var, weight=None, bias=None,
                    momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Training-mode batch_norm with the statistics of every rank's x together.

    Two passes, as batch_norm's: one all-reduce of (per-channel sums, count) gives the
    mean, a second of the sums of squares about it the variance (a sum of x^2 less m
    mean^2 would cancel in float32). Both in float64; the running statistics move as
    batch_norm's, with the global count.
    """
    if x.ndim < 2:
        raise ValueError(f"sync_batch_norm: expected (N, C, ...) input, got shape "
                         f"{tuple(x.shape)}")
    if weight is None and bias is not None:
        raise ValueError("sync_batch_norm: a bias without a weight is not supported")
    xp, axes, shape, c = x.xp, _stat_axes(x), _channel_shape(x), x.shape[1]
    stats = xp.empty(c + 1, dtype=np.float64)
    stats[:c] = sum_axes(x.data, axes)
    stats[c] = x.data.size // c
    distributed.all_reduce(stats)
    m = int(stats[c])
    if m < 2:
        raise ValueError(f"sync_batch_norm: training needs more than one value per channel "
                         f"over all ranks, got {m}")
    mu = (stats[:c] / m).astype(x.dtype)
    centred = x.data - mu.reshape(shape)
    centred *= centred
    squares = sum_axes(centred, axes).astype(np.float64)
    distributed.all_reduce(squares)
    var = (squares / m).astype(x.dtype)
    rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    rv = running_var.data if isinstance(running_var, Tensor) else running_var
    update_running_stats(rm, rv, mu, var, m, momentum)
    inputs = [x] + [a for a in (weight, bias) if a is not None]
    return SyncBatchNormFunction(mu, var, eps, m)(*inputs)


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over the global batch: the mean and variance of every rank's share
    together (torch.nn.SyncBatchNorm), for (N, C, ...) inputs.

    In one process (world size 1) or in eval mode it is BatchNorm, to the bit.
    """

    _expected_dims = (2, 3, 4, 5)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or distributed.get_world_size() == 1:
            return super().forward(x)
        if x.ndim not in self._expected_dims or x.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm({self.num_features}): expected an "
                             f"(N, {self.num_features}, ...) input, got shape {tuple(x.shape)}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:
                momentum = 1.0 / int(self.num_batches_tracked.item())
        return sync_batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                               momentum, self.eps)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module) -> Module:
        """module with every BatchNorm1d/2d of its tree replaced, in place, by a
        SyncBatchNorm that holds the same parameters and running statistics (the same
        tensors: an optimiser made before still steps them), momentum and eps. Returns
        the module (a new SyncBatchNorm when module is itself a BatchNorm)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, cls):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine,
                       module.track_running_stats)
            for name in ("weight", "bias"):
                if module._parameters.get(name) is not None:
                    setattr(sync, name, module._parameters[name])
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                sync._buffers[name] = module._buffers.get(name)
            return sync.train(module.training)
        for name, child in module._modules.items():
            if child is not None:  # set in place: a Sequential keeps its order
                module._modules[name] = cls.convert_sync_batchnorm(child)
        return module
