"""The optimiser base class: parameter groups, zero_grad, state dicts (as PyTorch's)."""
from __future__ import annotations

import copy
import numbers

import numpy as np

from .. import backend
from .._tensor import Tensor, _HookHandle
from ..autograd import enable_grad


class Optimizer:
    """Holds `param_groups` (dicts of "params" and hyper-parameters) and per-parameter `state`.

    A subclass sets `defaults`, `_init_state(p, group)` and `_update(params, states,
    group)`, which changes the arrays `p.data` and `state[...]` in place.
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict = {}  # Tensor -> dict; tensors hash by identity
        self._step_pre_hooks: dict = {}  # handle -> hook(optimizer, args, kwargs)
        if isinstance(params, Tensor):
            raise TypeError("params should be an iterable of Tensors or of dicts, got a Tensor "
                            "(wrap it in a list)")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters; hyper-parameters it leaves out take the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a param group is a dict, got {type(param_group).__name__}")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(p).__name__}")
            if p.dtype.kind != "f":
                raise TypeError(f"optimizer can only optimize floating-point tensors, "
                                f"got dtype {p.dtype}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError("some parameters appear in more than one parameter group "
                             "(or twice in one)")
        group = {k: v for k, v in param_group.items() if k != "params"}
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        group["params"] = params
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: `p.grad = None`, or fill them with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                elif p.grad.creator is not None:  # part of a graph: detach, as PyTorch does
                    p.grad = Tensor(p.xp.zeros_like(p.grad.data))
                else:
                    p.grad.data[...] = 0

    def register_step_pre_hook(self, hook):
        """Call hook(optimizer, args, kwargs) before each step, as PyTorch's: `args` and
        `kwargs` are step's own arguments, and a hook may return (new_args, new_kwargs) to
        replace them. Every gradient of the step is complete there, which is where a
        gradient logger reads them. Returns a handle whose remove() unregisters the hook."""
        handle = _HookHandle(self._step_pre_hooks)
        self._step_pre_hooks[handle] = hook
        return handle

    def _run_step_pre_hooks(self, closure):
        """The closure to step with, after every pre-hook has seen (or replaced) it."""
        args, kwargs = ((closure,) if closure is not None else ()), {}
        for hook in list(self._step_pre_hooks.values()):
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"{type(self).__name__}: a step pre-hook returned "
                                       f"{result!r}; expected None or (new_args, new_kwargs)")
                args, kwargs = result
        return kwargs.get("closure", args[0] if args else None)

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns `closure()` if given."""
        if self._step_pre_hooks:
            closure = self._run_step_pre_hooks(closure)
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            for p in params:
                if p.grad.data.shape != p.data.shape:
                    raise ValueError(f"{type(self).__name__}.step: gradient of shape "
                                     f"{p.grad.data.shape} for a parameter of shape "
                                     f"{p.data.shape}")
            states = []
            for p in params:
                if p not in self.state:
                    self.state[p] = self._init_state(p, group)
                self.state[p]["step"] += 1
                states.append(self.state[p])
            self._update(params, states, group)
        return loss

    def _init_state(self, p: Tensor, group: dict) -> dict:
        """The state of a parameter before its first step (arrays like `p.data`)."""
        return {"step": 0}

    def _update(self, params: list, states: list, group: dict) -> None:
        """Update `p.data` and `state[...]` in place for every parameter of the group that
        has a gradient (its state's step already counts this one)."""
        raise NotImplementedError

    # -- saving and resuming
    def state_dict(self) -> dict:
        """{"state": {index: {name: array or number}}, "param_groups": [{..., "params": [index]}]}.

        Parameters are numbered in the order of the groups; arrays are copies, so the
        dict is a snapshot that later steps do not change.
        """
        index, groups = {}, []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (v.copy() if hasattr(v, "shape") else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Resume from `state_dict()`: arrays are copied onto each parameter's device and dtype."""
        name = type(self).__name__
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if groups is None or "state" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and "
                             "'param_groups'")
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state dict has {len(groups)} "
                             f"parameter groups, the optimizer has {len(self.param_groups)}")
        for i, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(mine["params"]):
                raise ValueError(f"{name}.load_state_dict: group {i} has {len(saved['params'])} "
                                 f"parameters in the state dict, {len(mine['params'])} here")
        by_index = {}
        for saved, mine in zip(groups, self.param_groups):
            by_index.update(zip((int(i) for i in saved["params"]), mine["params"]))
        new_state = {}
        for i, saved in state_dict["state"].items():
            p = by_index.get(int(i))
            if p is None:
                raise ValueError(f"{name}.load_state_dict: state for parameter {i}, "
                                 "which no group lists")
            new_state[p] = {k: self._restore(v, p, f"state[{i}][{k!r}]")
                            for k, v in saved.items()}
        for saved, mine in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    mine[k] = tuple(v) if isinstance(v, list) else copy.deepcopy(v)
        self.state = new_state

    def _restore(self, value, p: Tensor, where: str):
        if isinstance(value, Tensor):
            value = value.data
        if isinstance(value, numbers.Number) or value is None:
            return value
        if not hasattr(value, "shape"):
            raise TypeError(f"{type(self).__name__}.load_state_dict: {where} is a "
                            f"{type(value).__name__}, expected an array or a number")
        if value.shape != p.shape:
            raise ValueError(f"{type(self).__name__}.load_state_dict: {where} has shape "
                             f"{value.shape}, its parameter has shape {p.shape}")
        value = backend.to_device(value, p.device)
        dtype = p.dtype if np.dtype(value.dtype).kind == "f" else value.dtype
        return value.astype(dtype, copy=True)  # a copy: the loaded dict stays untouched
