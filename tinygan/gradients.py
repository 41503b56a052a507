"""Per-layer gradient norms of a GAN's G and D, read where each optimiser steps.

    norms = GradientNorms(training, log=folder.log, every=50)   # hooks both optimisers
    training.fit([norms])                                       # gradients.csv, a row per 50 steps

A step pre-hook (`Optimizer.register_step_pre_hook`, as PyTorch's) sees every gradient of
an update complete, just before the optimiser uses it. On the steps that are logged the
hook measures, for every layer, the Euclidean norm of all its parameters' gradients,

    |g_layer| = sqrt(sum over the layer's parameters p of sum(p.grad ** 2)),

and the whole network's norm the same way over all its parameters. A layer is a parameter
name without its last part: `features.1.weight` and `features.1.bias` are `features.1`.
D may update n_critic times per step: its row holds the last of those updates. Nothing
here draws a random number or changes a gradient, so a run that logs its gradient norms
trains bit for bit as one that does not.
"""
from __future__ import annotations

import math

from . import backend

GRADIENTS_LOG = "gradients.csv"


def layer_of(parameter_name: str) -> str:
    """'features.1.weight' -> 'features.1'; a parameter of the network itself -> '-'."""
    return parameter_name.rpartition(".")[0] or "-"


def layer_norms(named_parameters) -> dict:
    """{layer: |gradient|} over the parameters that have a gradient, in the order of the
    network, and the whole network's norm under the key "total"."""
    squares: dict = {}
    for name, p in named_parameters:
        if p.grad is None:
            continue
        g = p.grad.data
        xp = backend.get_array_module(g)
        squares[layer_of(name)] = squares.get(layer_of(name), 0.0) + float(xp.vdot(g, g).real)
    norms = {layer: math.sqrt(s) for layer, s in squares.items()}
    norms["total"] = math.sqrt(sum(squares.values()))
    return norms


class GradientNorms:
    """A training callback: at step 1 and every `every` steps, a row of G's and D's
    gradient norms.

    The row is `step, G, D, G/<layer>..., D/<layer>...` (G and D are the whole networks'
    norms), appended with `log(name, header, row)` (RunFolder.log) to gradients.csv, and
    kept in `rows` for whoever watches the run live.
    """

    def __init__(self, training, log=None, every: int = 50):
        if every < 1:
            raise ValueError(f"GradientNorms: every must be at least 1, got {every}")
        self.training, self.log, self.every = training, log, int(every)
        gan = training.gan
        self.names = {"G": dict(gan.G.named_parameters()), "D": dict(gan.D.named_parameters())}
        self.header = None
        self.rows: list = []  # (step, {column: norm}) of the steps logged so far
        self._latest: dict = {}
        self._handles = [gan.opt_g.register_step_pre_hook(self._hook("G")),
                         gan.opt_d.register_step_pre_hook(self._hook("D"))]

    def due(self, step: int) -> bool:
        """Log this step? Every `every` steps, and step 1: the size of the gradients before
        either player has learnt anything, which later rows are measured against."""
        return step == 1 or step % self.every == 0

    def _hook(self, network: str):
        named = self.names[network]

        def measure(optimizer, args, kwargs):
            if self.due(self.training.step + 1):  # the step under way ends as step + 1
                self._latest[network] = layer_norms(named.items())
        return measure

    def __call__(self, training, losses) -> None:
        if not self.due(training.step) or len(self._latest) < 2:
            return
        columns = {"G": self._latest["G"]["total"], "D": self._latest["D"]["total"]}
        for network in ("G", "D"):
            columns.update({f"{network}/{layer}": norm
                            for layer, norm in self._latest[network].items() if layer != "total"})
        self._latest = {}
        if self.header is None:
            self.header = ["step", *columns]
        self.rows.append((training.step, columns))
        if self.log is not None:
            self.log(GRADIENTS_LOG, self.header,
                     [training.step, *(f"{columns.get(c, float('nan')):.6g}"
                                       for c in self.header[1:])])

    def remove(self) -> None:
        """Take the hooks off the optimisers."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
