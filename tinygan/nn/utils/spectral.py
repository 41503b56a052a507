"""Spectral normalisation (Miyato et al. 2018): W_SN = W / sigma(W), sigma by power iteration.

`spectral_norm(module)` moves the parameter `weight` to `weight_orig`, keeps the power
iteration's vectors as buffers `weight_u` and `weight_v` (state_dict keys as PyTorch), and
adds a forward pre-hook that recomputes `module.weight = weight_orig / sigma` before every
forward.
"""
from __future__ import annotations

from ... import backend
from ..._tensor import Tensor
from ..conv import ConvTranspose2d
from ..module import Module
from ..parameter import Parameter


def _normalize(a, eps: float):
    """a / max(||a||, eps), on raw arrays."""
    xp = backend.get_array_module(a)
    return a / max(float(xp.linalg.norm(a)), eps)


class SpectralNorm:
    """The forward pre-hook: power iteration in training mode, the stored u, v in eval."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12):
        if n_power_iterations < 0:
            raise ValueError(f"spectral_norm: n_power_iterations must be >= 0, "
                             f"got {n_power_iterations}")
        self.name, self.n_power_iterations, self.dim, self.eps = \
            name, n_power_iterations, dim, eps

    def weight_matrix(self, weight: Tensor) -> Tensor:
        """W viewed as a matrix (shape[dim], everything else): the map sigma measures."""
        if self.dim != 0:
            order = (self.dim,) + tuple(d for d in range(weight.ndim) if d != self.dim)
            weight = weight.permute(*order)
        return weight.reshape(weight.shape[0], -1)

    def power_iteration(self, matrix, u, v, steps: int) -> None:
        """v <- W^T u / |W^T u|, u <- W v / |W v|, in place on the buffers' arrays."""
        for _ in range(steps):
            v[...] = _normalize(matrix.T @ u, self.eps)
            u[...] = _normalize(matrix @ v, self.eps)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        """W / sigma, sigma = u^T W v: u, v are constants, the gradient flows through W."""
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        matrix = self.weight_matrix(weight)
        if do_power_iteration:
            self.power_iteration(matrix.data, u.data, v.data, self.n_power_iterations)
        # copies: a second forward before backward (D on real, then on fake) updates the
        # buffers in place, and must not change the vectors this graph was built with
        u_now, v_now = Tensor(u.data.copy()), Tensor(v.data.copy())
        sigma = (u_now * (matrix @ v_now)).sum()
        return weight / sigma

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module, module.training))


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Reparametrise module.<name> as <name>_orig / sigma(<name>_orig); returns the module.

    dim is the output dimension of the weight: 0, except 1 for ConvTranspose2d, whose
    weight is (in, out, kh, kw).
    """
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, SpectralNorm) and hook.name == name:
            raise RuntimeError(f"spectral_norm: {name!r} of {type(module).__name__} is "
                               "already spectrally normalised")
    weight = module._parameters.get(name)
    if weight is None:
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter {name!r}")
    if dim is None:
        dim = 1 if isinstance(module, ConvTranspose2d) else 0
    hook = SpectralNorm(name, n_power_iterations, dim, eps)

    height, width = hook.weight_matrix(weight).shape
    rng = backend.generator(weight.device)
    u = _normalize(rng.standard_normal(height).astype(weight.dtype), eps)
    v = _normalize(rng.standard_normal(width).astype(weight.dtype), eps)

    del module._parameters[name]
    module.register_parameter(name + "_orig", weight)
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    # a plain attribute (not a parameter), refreshed by the hook before every forward
    setattr(module, name, Tensor(weight.data))
    module.register_forward_pre_hook(hook)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo spectral_norm: <name> becomes a Parameter again, holding W / sigma."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            weight = hook.compute_weight(module, do_power_iteration=False)
            del module._forward_pre_hooks[key]
            for suffix in ("_orig", "_u", "_v"):
                delattr(module, name + suffix)
            module.__dict__.pop(name, None)
            module.register_parameter(name, Parameter(weight.data))
            return module
    raise ValueError(f"remove_spectral_norm: {name!r} of {type(module).__name__} is not "
                     "spectrally normalised")
