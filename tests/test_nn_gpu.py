"""Modules on the GPU: .to("cuda") moves parameters and buffers, results match the CPU."""
import numpy as np
import pytest

import tinygan
from tinygan import backend, nn
from tinygan.nn.utils import spectral_norm

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not backend.cuda_is_available(),
                                 reason=f"no GPU: {backend.cuda_unavailable_reason()}")]


def make():
    tinygan.manual_seed(0)
    return nn.Sequential(spectral_norm(nn.Conv2d(3, 8, 3, padding=1)), nn.BatchNorm2d(8),
                         nn.LeakyReLU(0.2), nn.SelfAttention(8),
                         nn.ConvTranspose2d(8, 2, 4, 2, 1), nn.Tanh())


def test_to_cuda_moves_everything_and_matches_cpu():
    cpu, gpu = make(), make()
    param = gpu[0].weight_orig
    assert gpu.to("cuda") is gpu and gpu[0].weight_orig is param
    assert all(t.device == "cuda" for t in list(gpu.parameters()) + list(gpu.buffers()))
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    y_cpu = cpu(tinygan.tensor(x))
    y_gpu = gpu(tinygan.tensor(x, device="cuda"))
    np.testing.assert_allclose(y_gpu.detach().numpy(), y_cpu.detach().numpy(), rtol=1e-3,
                               atol=1e-4)
    y_gpu.sum().backward()
    assert gpu[0].weight_orig.grad.device == "cuda"
    np.testing.assert_allclose(backend.to_numpy(gpu[1].running_mean.data),
                               cpu[1].running_mean.data, rtol=1e-4, atol=1e-6)
    cpu.load_state_dict(gpu.state_dict())  # a GPU checkpoint loads into a CPU model
    assert cpu[0].weight_u.device == "cpu"


def test_init_on_gpu():
    w = nn.Parameter(backend.to_device(np.empty((64, 32), dtype=np.float32), "cuda"))
    nn.init.kaiming_uniform_(w, a=5 ** 0.5)
    nn.init.orthogonal_(w)
    assert w.device == "cuda" and w.dtype == np.float32
