"""PyTorch frontend, per op family: a tiny torch model is traced (TorchScript) and exported
(torch.export), translated to IR, and the IR is evaluated with onnxruntime and compared
with torch's own output on a seeded input (atol 1e-5 x max(1, max|ref|))."""
from __future__ import annotations

import numpy as np
import pytest

import torch
nn = torch.nn
F = torch.nn.functional

from exporters.onnx.build import run_onnxruntime  # noqa: E402
from frontends.pytorch import ops_conv  # noqa: E402,F401  (registers converters)
from frontends.pytorch.walk import walk_exported, walk_torchscript  # noqa: E402


class Fn(nn.Module):
    def __init__(self, fn, *mods):
        super().__init__()
        self.fn = fn
        self.mods = nn.ModuleList(mods)

    def forward(self, x):
        return self.fn(x, *self.mods)


def _bn(c):
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():
        bn.running_mean.normal_(0, 0.1)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_(0, 0.1)
    return bn


CASES = {
    "conv_groups_dilation": (lambda x, c: c(x), [nn.Conv2d(8, 16, 3, 2, 2, dilation=2, groups=4)],
                             (1, 8, 15, 17)),
    "conv_same": (lambda x, c: c(x), [nn.Conv2d(4, 6, 4, padding="same")], (1, 4, 9, 9)),
    "conv_valid_nobias": (lambda x, c: c(x), [nn.Conv2d(4, 6, 3, padding="valid", bias=False)],
                          (1, 4, 9, 9)),
    "conv1d": (lambda x, c: c(x), [nn.Conv1d(4, 6, 5, stride=2, padding=2)], (1, 4, 20)),
    "conv_transpose": (lambda x, c: c(x), [nn.ConvTranspose2d(4, 6, 3, 2, 1, output_padding=1)],
                       (1, 4, 7, 7)),
    "conv_transpose_groups": (lambda x, c: c(x), [nn.ConvTranspose2d(4, 8, 2, 2, groups=2)],
                              (1, 4, 5, 5)),
    "batchnorm": (lambda x, c, b: b(c(x)), [nn.Conv2d(3, 8, 3), _bn(8)], (1, 3, 10, 10)),
    "linear_addmm": (lambda x, l: l(x.flatten(1)), [nn.Linear(48, 10)], (1, 3, 4, 4)),
    "linear_3d": (lambda x, l: l(x), [nn.Linear(4, 5)], (1, 3, 4)),
    "matmul": (lambda x: torch.matmul(x, x.transpose(-1, -2)), [], (1, 2, 5, 3)),
    "activations": (lambda x, p: torch.cat([F.relu(x), F.relu6(x * 4), F.hardtanh(x, -0.5, 0.7),
                                            F.leaky_relu(x, 0.2), p(x), F.elu(x),
                                            F.gelu(x), F.gelu(x, approximate="tanh"),
                                            torch.sigmoid(x), torch.tanh(x), F.silu(x),
                                            F.hardswish(x * 3), F.hardsigmoid(x * 3),
                                            F.mish(x), F.softplus(x)], 1),
                    [nn.PReLU(4, 0.1)], (1, 4, 5, 5)),
    "softmax": (lambda x: F.softmax(x, 1) + F.log_softmax(x, -1), [], (1, 4, 5, 5)),
    "pools": (lambda x: torch.cat([F.max_pool2d(x, 3, 2, 1), F.avg_pool2d(x, 3, 2, 1),
                                   F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)], 1),
              [], (1, 3, 11, 11)),
    "pools_ceil": (lambda x: torch.cat([F.max_pool2d(x, 3, 2, ceil_mode=True),
                                        F.avg_pool2d(x, 2, 2, ceil_mode=True)], 1),
                   [], (1, 3, 10, 10)),
    "adaptive": (lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1) +
                 F.adaptive_avg_pool2d(x, (2, 4)).flatten(1)[:, :3], [], (1, 3, 8, 8)),
    "arith": (lambda x: (x + 1.5) * 2 - x / 3 + (1 - x) + x.pow(2) + torch.rsqrt(x.abs() + 1),
              [], (1, 3, 4, 4)),
    "broadcast": (lambda x: x * x.mean((2, 3), keepdim=True) + x.sum(1, keepdim=True),
                  [], (1, 3, 4, 5)),
    "clamp": (lambda x: torch.clamp(x, -0.3, 0.4) + x.clamp(min=0.1) + x.clamp(max=0.2),
              [], (1, 3, 4, 4)),
    "shape_ops": (lambda x: torch.cat([x.view(1, 3, 20).permute(0, 2, 1).reshape(1, 3, 4, 5),
                                       x.transpose(2, 3).contiguous().view(1, 3, 4, 5)], 1),
                  [], (1, 3, 4, 5)),
    "slice_split": (lambda x: torch.cat(list(x.chunk(3, 1)[::-1]) + list(x.split([1, 2], 1)) +
                                        [x[:, 1:3], x[:, :, ::2][:, :, :2].mean(2, keepdim=True) + x,
                                         x.narrow(1, 1, 1), x.unbind(1)[2].unsqueeze(1)], 1),
                    [], (1, 3, 4, 5)),
    "squeeze": (lambda x: x.mean(2).unsqueeze(2).squeeze(0).unsqueeze(0), [], (1, 3, 4, 5)),
    "upsample": (lambda x: torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"),
                                      F.interpolate(x, scale_factor=2, mode="bilinear"),
                                      F.interpolate(x, size=(8, 10), mode="bilinear",
                                                    align_corners=True)], 1),
                 [], (1, 3, 4, 5)),
    "pad": (lambda x: torch.cat([F.pad(x, (1, 2, 0, 1)), F.pad(x, (1, 2, 0, 1), "reflect"),
                                 F.pad(x, (1, 2, 0, 1), value=0.5)], 1), [], (1, 3, 4, 5)),
    "channel_shuffle": (lambda x: x.view(1, 2, 3, 4, 4).transpose(1, 2).contiguous()
                        .view(1, 6, 4, 4), [], (1, 6, 4, 4)),
    "dropout_identity": (lambda x, d, i: i(d(x)).clone().detach(), [nn.Dropout(0.5),
                                                                   nn.Identity()], (1, 3, 4, 4)),
    "flatten_size": (lambda x: x.view(x.size(0), -1) * 2, [], (1, 3, 4, 4)),
}


def _model(case):
    fn, mods, shape = CASES[case]
    torch.manual_seed(0)
    return Fn(fn, *mods).eval(), shape


def _check(graph, model, x):
    graph.validate()
    with torch.no_grad():
        ref = model(x)
    ref = [ref] if isinstance(ref, torch.Tensor) else list(ref)
    got = run_onnxruntime(graph, {graph.inputs[0].name: x.numpy()})
    for r, g in zip(ref, got):
        r = r.numpy()
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=0, atol=1e-5 * max(1.0, float(np.abs(r).max())))


@pytest.mark.parametrize("case", sorted(CASES))
def test_exported(case):
    model, shape = _model(case)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    ep = torch.export.export(model, (x,))
    graph, counts = walk_exported(ep, {})
    assert counts
    _check(graph, model, x)


@pytest.mark.parametrize("case", sorted(CASES))
def test_torchscript(case):
    model, shape = _model(case)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    frozen = torch.jit.freeze(torch.jit.trace(model, x).eval())
    graph, _ = walk_torchscript(frozen, {"": shape})
    _check(graph, model, x)


def test_unsupported_ops_all_listed():
    from converter.errors import UnsupportedOpsError

    model = Fn(lambda x: torch.cumsum(x, 1) + torch.flip(x, [2]) + torch.cumsum(x, 2))
    x = torch.randn(1, 3, 4, 4)
    with pytest.raises(UnsupportedOpsError) as e:
        walk_exported(torch.export.export(model, (x,)), {})
    ops = {i.op: len(i.nodes) for i in e.value.issues}
    assert ops == {"aten.cumsum": 2, "aten.flip": 1}
