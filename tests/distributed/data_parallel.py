"""DistributedDataParallel and SyncBatchNorm against one process on the whole batch.

Every rank builds the same float64 networks from the same seed, and also a reference copy
that it trains alone on the whole batch; its own share of each batch goes through the
distributed ones. Gradients, statistics and, after 50 Adam steps, the weights must agree
with the reference to 1e-9 and be the same bits on every rank.
"""
import numpy as np

import tinygan
import tinygan.distributed as dist
from tinygan import functional as F
from tinygan import nn, optim
from tinygan.nn.parallel import DistributedDataParallel, sync_batch_norm
from harness import as_on_rank0, close, run_checks, shares, summed

N = 8  # the whole batch; every world size tested (1, 2, 4, 8) divides it


def mlp(sizes, seed, batchnorm=False):
    tinygan.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += ([nn.BatchNorm1d(b)] if batchnorm else []) + [nn.Tanh()]
    return nn.Sequential(*layers).double()


def copy_of(net, sizes, seed, batchnorm=False):
    ref = mlp(sizes, seed, batchnorm)
    ref.load_state_dict(net.state_dict())
    return ref


def t(a, requires_grad=False):
    return tinygan.tensor(np.ascontiguousarray(a), requires_grad=requires_grad)


def bce(logits, target: float):
    return F.binary_cross_entropy_with_logits(logits, tinygan.full(logits.shape, target,
                                                                   dtype=logits.dtype))


def check_construction_broadcasts_rank0():
    net = mlp([3, 5, 2], seed=dist.get_rank(), batchnorm=True)  # a different net per rank
    net[1].running_mean.data[...] = dist.get_rank()
    DistributedDataParallel(net)
    for name, x in net.state_dict().items():
        assert np.array_equal(x.numpy(), as_on_rank0(x.numpy())), name


def check_gradients_are_the_whole_batch_gradient():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((N, 5)), rng.standard_normal((N, 1))
    sizes = [5, 16, 16, 1]
    net = mlp(sizes, seed=0)
    ref = copy_of(net, sizes, seed=0)
    model = DistributedDataParallel(net, bucket_cap_mb=2e-4)  # 210 bytes: 3 buckets
    assert len(model.buckets) == 3
    mine = shares(N)
    F.mse_loss(model(t(X[mine])), t(Y[mine])).backward()
    F.mse_loss(ref(t(X)), t(Y)).backward()
    for (name, p), q in zip(net.named_parameters(), ref.parameters()):
        close(p.grad.numpy(), q.grad.numpy())
        assert np.array_equal(p.grad.numpy(), as_on_rank0(p.grad.numpy())), name


class TwoHeads(nn.Module):
    """A body and two heads, one used per call: a backward that misses parameters."""

    def __init__(self):
        super().__init__()
        self.body, self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2), nn.Linear(4, 2)

    def forward(self, x, head):
        return getattr(self, head)(F.tanh(self.body(x)))


def check_parameters_without_gradient():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((N, 3))
    tinygan.manual_seed(0)
    net = TwoHeads().double()
    model = DistributedDataParallel(net, bucket_cap_mb=1e-4)  # a bucket per parameter
    mine = shares(N)

    # every rank uses head a: b gets no gradient anywhere and keeps none
    (model(t(X[mine]), "a") ** 2).mean().backward()
    assert net.b.weight.grad is None and net.b.bias.grad is None
    local = [tinygan.grad((net(t(X[mine]), "a") ** 2).mean(), p)[0].numpy()
             for p in (net.body.weight, net.a.weight)]
    for p, g in zip((net.body.weight, net.a.weight), local):
        close(p.grad.numpy(), summed(g) / dist.get_world_size())

    # rank 0 uses head a, the others head b: a head's gradient is rank 0's part / N
    net.zero_grad()
    head = "a" if dist.get_rank() == 0 else "b"
    (model(t(X[mine]), head) ** 2).mean().backward()
    for p in (net.a.weight, net.b.weight):
        g = tinygan.grad((net(t(X[mine]), head) ** 2).mean(), p, allow_unused=True)[0]
        g = np.zeros(p.shape) if g is None else g.numpy()
        close(p.grad.numpy(), summed(g) / dist.get_world_size())


def gan(seed, batchnorm):
    g_sizes, d_sizes = [4, 16, 16, 2], [2, 16, 1]
    G, D = mlp(g_sizes, seed, batchnorm), mlp(d_sizes, seed + 1)
    return G, D, copy_of(G, g_sizes, seed, batchnorm), copy_of(D, d_sizes, seed + 1)


def gan_step(G, D, opt_g, opt_d, real, z):
    """The vanilla GAN step (gans/vanilla.py): D on real and detached fake, then G."""
    fake = G(z).detach()  # a forward of G that no backward reaches
    loss_d = bce(D(real), 1.0) + bce(D(fake), 0.0)
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = bce(D(G(z)), 1.0)  # D's parameters get gradients here too
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()


def check_gan_step_gradients():
    G, D, G_ref, D_ref = gan(seed=3, batchnorm=False)
    G, D = DistributedDataParallel(G), DistributedDataParallel(D)
    rng = np.random.default_rng(3)
    real, z = rng.standard_normal((N, 2)), rng.standard_normal((N, 4))
    mine = shares(N)
    fake = G(t(z[mine])).detach()
    (bce(D(t(real[mine])), 1.0) + bce(D(fake), 0.0)).backward()
    (bce(D_ref(t(real)), 1.0) + bce(D_ref(G_ref(t(z)).detach()), 0.0)).backward()
    assert all(p.grad is None for p in G.parameters())  # D's update gives G nothing
    for p, q in zip(D.parameters(), D_ref.parameters()):
        close(p.grad.numpy(), q.grad.numpy())
    D.zero_grad()
    D_ref.zero_grad()
    bce(D(G(t(z[mine]))), 1.0).backward()
    bce(D_ref(G_ref(t(z))), 1.0).backward()
    for p, q in zip(list(G.parameters()) + list(D.parameters()),
                    list(G_ref.parameters()) + list(D_ref.parameters())):
        close(p.grad.numpy(), q.grad.numpy())


def check_50_adam_steps_with_sync_batchnorm():
    G, D, G_ref, D_ref = gan(seed=4, batchnorm=True)
    G = DistributedDataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(G))
    D = DistributedDataParallel(D)
    assert isinstance(G.module[1], nn.SyncBatchNorm)
    opts = [optim.Adam(m.parameters(), lr=1e-2, betas=(0.5, 0.999)) for m in (G, D)]
    opts_ref = [optim.Adam(m.parameters(), lr=1e-2, betas=(0.5, 0.999)) for m in (G_ref, D_ref)]
    rng = np.random.default_rng(4)
    mine = shares(N)
    for _ in range(50):  # a new whole batch each step, of which each rank sees its share
        real = rng.standard_normal((N, 2)) * 0.5 + 2.0
        z = rng.standard_normal((N, 4))
        gan_step(G, D, *opts, t(real[mine]), t(z[mine]))
        gan_step(G_ref, D_ref, *opts_ref, t(real), t(z))
    for model, ref in ((G, G_ref), (D, D_ref)):
        theirs = ref.state_dict()
        for name, x in model.module.state_dict().items():
            assert np.array_equal(x.numpy(), as_on_rank0(x.numpy())), name
            close(x.numpy(), theirs[name].numpy())


def check_sync_batch_norm_forward_backward():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((N, 3, 4, 4)) * 2 + 5
    C = rng.standard_normal(X.shape)  # a random cotangent
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    size = dist.get_world_size()
    mine = shares(N, [N // size - 1] + [N // size + 1] + [N // size] * (size - 2))  # uneven
    stats = [np.zeros(3), np.ones(3)]
    stats_ref = [np.zeros(3), np.ones(3)]
    x, wt, bt = t(X[mine], True), t(w, True), t(b, True)
    x_ref, w_ref, b_ref = t(X, True), t(w, True), t(b, True)
    y = sync_batch_norm(x, *stats, wt, bt, momentum=0.1, eps=1e-5)
    y_ref = F.batch_norm(x_ref, *stats_ref, w_ref, b_ref, training=True, momentum=0.1, eps=1e-5)
    close(y.detach().numpy(), y_ref.detach().numpy()[mine], 1e-12)
    for s, s_ref in zip(stats, stats_ref):
        close(s, s_ref, 1e-12)
    y.backward(t(C[mine]))
    y_ref.backward(t(C))
    close(x.grad.numpy(), x_ref.grad.numpy()[mine], 1e-12)
    close(summed(wt.grad.numpy()), w_ref.grad.numpy(), 1e-12)  # each rank holds its part
    close(summed(bt.grad.numpy()), b_ref.grad.numpy(), 1e-12)

    # the layer: twice in training (running statistics move), then once in eval
    sync, ref = nn.SyncBatchNorm(3).double(), nn.BatchNorm2d(3).double()
    for _ in range(2):
        close(sync(t(X[mine])).detach().numpy(), ref(t(X)).detach().numpy()[mine], 1e-12)
    for name, v in sync.state_dict().items():
        close(v.numpy(), ref.state_dict()[name].numpy(), 1e-12)
    sync.eval()
    ref.eval()
    close(sync(t(X[mine])).detach().numpy(), ref(t(X)).detach().numpy()[mine], 1e-12)


def check_sync_batch_norm_second_derivative():
    """The gradient of <R, dx> + <Q_r, dw_r>, dx and this rank's part of dw being the
    gradients of <C, y> (with create_graph): a penalty on gradients, through the layer."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((N, 3, 2, 2))
    C, R = rng.standard_normal(X.shape), rng.standard_normal(X.shape)
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    size = dist.get_world_size()
    Q = rng.standard_normal((size, 3))  # a different cotangent for each rank's dw
    mine = shares(N)
    x, wt, bt = t(X[mine], True), t(w, True), t(b, True)
    gx, gw = tinygan.grad((sync_batch_norm(x, None, None, wt, bt) * t(C[mine])).sum(),
                          [x, wt], create_graph=True)
    ((gx * t(R[mine])).sum() + (gw * t(Q[dist.get_rank()])).sum()).backward()

    x_ref, w_ref, b_ref = t(X, True), t(w, True), t(b, True)
    y_ref = F.batch_norm(x_ref, None, None, w_ref, b_ref, training=True)
    gx_ref, = tinygan.grad((y_ref * t(C)).sum(), x_ref, create_graph=True)
    penalty = (gx_ref * t(R)).sum()
    for r in range(size):  # rank r's part of dw: <C, y> over its rows only
        rows = np.zeros_like(C)
        rows[shares(N, rank=r)] = C[shares(N, rank=r)]
        gw_r, = tinygan.grad((y_ref * t(rows)).sum(), w_ref, create_graph=True)
        penalty = penalty + (gw_r * t(Q[r])).sum()
    penalty.backward()
    close(gx.detach().numpy(), gx_ref.detach().numpy()[mine], 1e-12)
    close(x.grad.numpy(), x_ref.grad.numpy()[mine], 1e-10)
    close(summed(wt.grad.numpy()), w_ref.grad.numpy(), 1e-10)


if __name__ == "__main__":
    run_checks(globals())
