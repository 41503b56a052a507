"""Worked solutions to the exercises of lesson 19, data parallelism.

Run from anywhere: python lessons/solutions/19-data-parallelism.py
"""
import numpy as np

import tinygan
from tinygan import nn, functional as F

rng = np.random.default_rng(0)
X, Y = rng.standard_normal((12, 3)), rng.standard_normal((12, 1))
tinygan.manual_seed(0)
net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()


def gradients(x, y):
    net.zero_grad()
    F.mse_loss(net(tinygan.tensor(x)), tinygan.tensor(y)).backward()
    return [p.grad.numpy().copy() for p in net.parameters()]


# Exercise 1. A share's loss is the mean over its |B_r| samples, so its gradient is
# (1/|B_r|) sum over its samples. The batch's is (1/|B|) sum over all of them, which is
# sum_r (|B_r| / |B|) grad L(B_r): weight each rank's gradient by its share of the batch,
# w_r = |B_r| / |B| (equal shares give w_r = 1/N, the plain average).
whole = gradients(X, Y)
cuts = [0, 2, 6, 12]
uneven = [gradients(X[a:b], Y[a:b]) for a, b in zip(cuts, cuts[1:])]
weights = [(b - a) / 12 for a, b in zip(cuts, cuts[1:])]
weighted = [sum(w * g for w, g in zip(weights, gs)) for gs in zip(*uneven)]
gap = max(float(np.abs(a - b).max()) for a, b in zip(weighted, whole))
print(f"exercise 1: weights {weights}: largest gap from the whole batch's gradient {gap:.1e}")
assert gap < 1e-14

# Exercise 2. The ring: 2 (N - 1) steps, in each of which every rank sends one message of
# S / N elements. A message costs a latency a plus its size over the bandwidth, size / b:
# ring = 2 (N - 1) (a + S / (N b)). Through rank 0: N - 1 messages of S in, then N - 1 out,
# one after the other at rank 0's link: 2 (N - 1) (a + S / b). The ring sends the same
# number of messages, each N times smaller, so it never loses on this model; it wins by up
# to a factor N for large arrays and ties as S -> 0. Rank 0 wins only if it can send to
# everyone at once (a tree or a broadcast in log N steps): 2 log2(N) (a + S / b) against
# the ring's 2 (N - 1) a + 2 S / b, which beats it for small arrays, where latency rules.


def ring(n, s, a, b):
    return 2 * (n - 1) * (a + s / (n * b))


def tree(n, s, a, b):
    return 2 * np.log2(n) * (a + s / b)


a, b, n = 5e-6, 10e9, 8              # 5 microseconds, 10 GB/s, eight ranks
for size in (1e2, 1e4, 1e6, 1e8):    # bytes
    print(f"exercise 2: {size:9.0e} bytes on {n} ranks: ring {ring(n, size, a, b) * 1e6:9.1f} us, "
          f"tree {tree(n, size, a, b) * 1e6:9.1f} us")
crossover = next(s for s in np.logspace(1, 9, 801) if ring(n, s, a, b) < tree(n, s, a, b))
print(f"exercise 2: with these numbers the ring wins from about {crossover:,.0f} bytes")
assert ring(n, 1e8, a, b) < tree(n, 1e8, a, b) and ring(n, 1e2, a, b) > tree(n, 1e2, a, b)

# Exercise 3. Every rank starts from rank 0's weights (the one broadcast) and then applies
# the same averaged gradient, with the same optimiser, settings and number of steps: the
# weights stay equal bit for bit, and nothing needs broadcasting again (the all-reduce must
# hand every rank the same bits, as a ring does: each chunk is summed once, then copied).
# Random numbers that only shape a rank's own gradient are fine, since the average is what
# every rank applies: each rank's dropout masks may differ. What makes replicas drift is
# state that changes outside the averaged gradient: BatchNorm's running statistics, updated
# from a rank's own share (unless SyncBatchNorm, or a broadcast of the buffers), a rank that
# skips a step or clips its own gradient before the average, or a different learning rate.
tinygan.manual_seed(0)
make = lambda: nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.BatchNorm1d(8),  # noqa: E731
                             nn.Tanh(), nn.Linear(8, 1)).double()
replicas = [make(), make()]
replicas[1].load_state_dict(replicas[0].state_dict())                 # the broadcast
shares = [(X[:6], Y[:6]), (X[6:], Y[6:])]
for step in range(3):
    grads = []
    for rank, (m, (x, y)) in enumerate(zip(replicas, shares)):
        tinygan.manual_seed(100 * step + rank)                         # each rank's own masks
        m.zero_grad()
        F.mse_loss(m(tinygan.tensor(x)), tinygan.tensor(y)).backward()
        grads.append([p.grad.numpy().copy() for p in m.parameters()])
    average = [(g0 + g1) / 2 for g0, g1 in zip(*grads)]                # the all-reduce
    for m in replicas:
        for p, g in zip(m.parameters(), average):
            p.data -= 0.1 * g
params_equal = all(np.array_equal(p.data, q.data)
                   for p, q in zip(replicas[0].parameters(), replicas[1].parameters()))
stats = [m[2].running_mean.numpy() for m in replicas]
print(f"exercise 3: weights equal after 3 steps with different dropout masks: {params_equal}; "
      f"BatchNorm's running means differ by up to {np.abs(stats[0] - stats[1]).max():.2f}")
assert params_equal and np.abs(stats[0] - stats[1]).max() > 1e-3
