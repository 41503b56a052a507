"""The benchmark command: every workload builds and steps, its output parses, and the
PyTorch comparison is skipped cleanly where PyTorch is missing. No timing is asserted."""
import importlib.util
import json
import math
import sys

import pytest

from tinygan import bench
from tinygan.bench_models import WORKLOADS


def _importable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


needs_nn = pytest.mark.skipif(not (_importable("tinygan.nn") and _importable("tinygan.optim")),
                              reason="tinygan.nn or tinygan.optim is not importable yet")
needs_torch = pytest.mark.skipif(
    not _importable("torch"),
    reason="PyTorch is not importable here (tests opt in with TINYGAN_TORCH_TESTS=1)")

TINY = dict(device="cpu", batch=4, steps=1, warmup=0)


@needs_nn
@pytest.mark.parametrize("workload", WORKLOADS)
def test_each_workload_takes_a_step_with_finite_losses(workload):
    r = bench.run(workload, **TINY)
    assert r["workload"] == workload and r["batch"] == 4 and r["framework"] == "tinygan"
    assert math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"])
    assert r["ms_per_step"] > 0
    assert r["peak_mb"] is None or r["peak_mb"] >= 0


@needs_nn
@needs_torch
@pytest.mark.parametrize("workload", ["vanilla-mnist", "wgan-gp-mnist", "sagan-cifar10"])
def test_torch_builds_the_same_networks(workload):
    """Same source, two libraries: the parameter shapes agree one for one."""
    from tinygan.bench_models import build, tinygan_framework, torch_framework
    ours = build(tinygan_framework(), workload, batch=4)
    theirs = build(torch_framework(), workload, batch=4)
    for ours_net, theirs_net in ((ours.G, theirs.G), (ours.D, theirs.D)):
        a = [tuple(p.shape) for p in ours_net.parameters()]
        b = [tuple(p.shape) for p in theirs_net.parameters()]
        assert a == b
    r = bench.run(workload, framework="torch", **TINY)
    assert math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"])


@needs_nn
def test_json_output_is_one_parsable_line_per_workload(capsys):
    code = bench.main(["vanilla-mnist", "--only", "tinygan", "--json",
                       "--batch", "4", "--steps", "1", "--warmup", "0"])
    assert code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1
    r = json.loads(lines[0])
    for key in ("workload", "device", "batch", "ms_per_step", "peak_mb"):
        assert key in r
    assert r["workload"] == "vanilla-mnist" and r["device"] == "cpu" and r["batch"] == 4


@needs_nn
def test_compare_without_torch_prints_the_skip_message(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    assert not bench.torch_available()
    calls = []

    def fake_isolated(framework, *args, **kwargs):
        calls.append(framework)
        return bench.run(args[0], framework=framework, **TINY)

    monkeypatch.setattr(bench, "run_isolated", fake_isolated)
    code = bench.main(["vanilla-mnist", "--compare", "torch", "--json",
                       "--batch", "4", "--steps", "1", "--warmup", "0"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == bench.TORCH_MISSING
    r = json.loads(out[1])
    assert "torch_ms_per_step" not in r and "ratio" not in r
    assert calls == ["tinygan"]


def test_unknown_workload_names_the_choices():
    from tinygan.bench_models import build, tinygan_framework
    if not (_importable("tinygan.nn") and _importable("tinygan.optim")):
        pytest.skip("tinygan.nn or tinygan.optim is not importable yet")
    with pytest.raises(ValueError, match="dcgan-mnist"):
        build(tinygan_framework(), "dcgan-imagenet", batch=4)


def test_bad_step_counts_are_refused():
    with pytest.raises(ValueError, match="steps"):
        bench.run("vanilla-mnist", steps=0)
