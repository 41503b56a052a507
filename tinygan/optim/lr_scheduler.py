"""Learning-rate schedules: change each group's `lr` as training goes on (PyTorch's API).

    scheduler = LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=steps)
    for step in range(steps):
        ... optimizer.step()
        scheduler.step()

Each schedule here is a closed form lr(t) = initial_lr * factor(t) of the count t of
`step()` calls, so a scheduler made with `last_epoch=t` on a resumed optimizer carries
on exactly where the old one stopped. As in PyTorch, the first scheduler on an optimizer
writes `initial_lr` into its groups (saved with the optimizer's state dict).
"""
from __future__ import annotations

import math


class LRScheduler:
    """Sets `group["lr"] = self.lr_at(group["initial_lr"], t)` for t = last_epoch."""

    def __init__(self, optimizer, last_epoch: int = -1):
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: param group {i} has no 'initial_lr' "
                               f"(resuming with last_epoch={last_epoch} needs the optimizer "
                               "state of a run that had a scheduler)")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def factor(self, t: int) -> float:
        raise NotImplementedError

    def lr_at(self, base: float, t: int) -> float:
        """The lr after t steps of a group that started at `base`."""
        return base * self.factor(t)

    def step(self) -> None:
        """Advance one step (call it after `optimizer.step()`)."""
        self.last_epoch += 1
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(base, self.last_epoch)

    def get_last_lr(self) -> list:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """Everything but the optimizer: numbers only, so it saves to .npz as is."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)


class LinearLR(LRScheduler):
    """factor goes linearly from start_factor to end_factor over total_iters steps, then stays."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: start_factor {start_factor} must be in (0, 1] and "
                             f"end_factor {end_factor} in [0, 1]")
        if total_iters < 1:
            raise ValueError(f"LinearLR: total_iters {total_iters} must be at least 1")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = int(total_iters)
        super().__init__(optimizer, last_epoch)

    def factor(self, t: int) -> float:
        done = min(t, self.total_iters) / self.total_iters
        return self.start_factor + (self.end_factor - self.start_factor) * done


class StepLR(LRScheduler):
    """factor = gamma ** (t // step_size)."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size {step_size} must be at least 1")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def factor(self, t: int) -> float:
        return self.gamma ** (t // self.step_size)


class ExponentialLR(LRScheduler):
    """factor = gamma ** t."""

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def factor(self, t: int) -> float:
        return self.gamma ** t


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) (1 + cos(pi t / T_max)) / 2 (no restarts)."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max {T_max} must be at least 1")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base: float, t: int) -> float:
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2
