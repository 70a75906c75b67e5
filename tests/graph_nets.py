"""Real-network shapes as ordinary PyTorch classes with a ``forward`` (modules and functional calls mixed),
the sources the graph-porting tests read through ``torch.fx``. BatchNorm statistics are set at random
(seeded), so that a wrong epsilon, momentum or a skipped BatchNorm shows; spatial sizes are odd."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, eps: float = 1e-5) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out, eps=eps)
    )


class Residual(nn.Module):
    """A ResNet basic block; with ``stride=2`` its shortcut is a strided 1x1 projection."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv_bn(c_in, c_out, 3, stride)
        self.conv2 = conv_bn(c_out, c_out, 3, eps=1e-3)
        self.shortcut = conv_bn(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.shortcut(x))


class ResNet(nn.Module):
    """Stem, a stride-2 block with a projection shortcut, an identity block, ``x.mean((2, 3))``, dense."""

    input_shape = (3, 15, 15)

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8, 3)
        self.blocks = nn.Sequential(Residual(8, 16, stride=2), Residual(16, 16))
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.relu(self.stem(x)))
        return self.fc(x.mean((2, 3)))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce, self.expand = nn.Conv2d(channels, reduced, 1), nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.expand(F.relu(self.reduce(gate))))


class MobileNet(nn.Module):
    """A MobileNetV3-style stem (hard-swish) and inverted residual block: expand, depthwise (ReLU6),
    squeeze-excite, project, residual add; then pooling, dropout, dense."""

    input_shape = (3, 17, 17)

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8, 3, stride=2)
        self.expand = conv_bn(8, 24, 1)
        self.depthwise = conv_bn(24, 24, 3, groups=24, eps=1e-3)
        self.se = SqueezeExcite(24, 6)
        self.project = conv_bn(24, 8, 1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(8, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.hardswish(self.stem(x))
        y = F.relu6(self.depthwise(F.relu6(self.expand(x))))
        return self.head(x + self.project(self.se(y)))


class Inception(nn.Module):
    """A stem, a four-branch Inception block (1x1; 1x1-3x3; 1x1-5x5; pool-1x1) joined by ``torch.cat``,
    ceil-mode max and average pooling, ``torch.flatten`` of a global pooling, dense."""

    input_shape = (3, 15, 15)

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8, 3)
        self.p1 = nn.Conv2d(8, 4, 1)
        self.p2 = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
        self.p3 = nn.Sequential(nn.Conv2d(8, 2, 1), nn.ReLU(), nn.Conv2d(2, 4, 5, padding=2))
        self.p4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(8, 4, 1))
        self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.avg = nn.AvgPool2d(3, stride=2, ceil_mode=True, count_include_pad=False)
        self.fc = nn.Linear(18, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        branches = [self.p1(x), self.p2(x), self.p3(x), self.p4(x)]
        x = self.avg(self.pool(torch.cat([F.relu(b) for b in branches], dim=1)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1))


def seeded(cls: type[nn.Module], seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    """An instance with seeded weights and random BatchNorm statistics and affine parameters, in inference mode."""
    torch.manual_seed(seed)
    model = cls()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
                module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.2)
    return model.to(dtype).eval()


NETS = {"resnet": ResNet, "mobilenet": MobileNet, "inception": Inception}
