"""Backbones (CIFAR-style ResNet-18 / ResNet-32, a small CNN), projection head, classifier.

Every backbone takes float images (B, C, H, W) in [0, 1], normalises them with the training
set's per-channel mean and std (a fixed buffer, so checkpoints carry it), and returns pooled
features (B, feature_dim).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .config import ModelConfig

__all__ = [
    "Classifier",
    "Encoder",
    "NormedLinear",
    "ProjectionHead",
    "build_encoder",
    "resnet18",
    "resnet32",
    "small_cnn",
]


class Normalize(nn.Module):
    """(x - mean) / std per channel, with the statistics stored as buffers."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer(
            "mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
        )
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (He et al. 2016)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, projection: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            if projection:  # option B: 1x1 convolution (ResNet-18)
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                    nn.BatchNorm2d(out_channels),
                )
            else:  # option A: subsample and zero-pad channels, parameter free (CIFAR ResNet-32)
                self.shortcut = _PadShortcut(out_channels - in_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class _PadShortcut(nn.Module):
    def __init__(self, extra_channels: int, stride: int) -> None:
        super().__init__()
        self.extra, self.stride = extra_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        half = self.extra // 2
        return nn.functional.pad(x, (0, 0, 0, 0, half, self.extra - half))


class Encoder(nn.Module):
    """Normalisation, a convolutional trunk, global average pooling.

    Attributes
    ----------
    feature_dim : int
        Width of the pooled feature vector.
    """

    def __init__(self, normalize: Normalize, trunk: nn.Module, feature_dim: int) -> None:
        super().__init__()
        self.normalize = normalize
        self.trunk = trunk
        self.feature_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.normalize(x)).mean(dim=(2, 3))


def _resnet(
    in_channels: int, widths: Sequence[int], blocks: Sequence[int], projection: bool
) -> tuple[nn.Module, int]:
    # CIFAR stem: one 3x3 convolution, stride 1, no max-pool, so small images keep their detail.
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(inplace=True),
    ]
    channels = widths[0]
    for stage, (width, count) in enumerate(zip(widths, blocks)):
        for i in range(count):
            stride = 2 if stage > 0 and i == 0 else 1
            layers.append(BasicBlock(channels, width, stride, projection))
            channels = width
    return nn.Sequential(*layers), channels


def resnet18(in_channels: int, mean: Sequence[float], std: Sequence[float]) -> Encoder:
    """CIFAR-style ResNet-18: 3x3 stem, stages of 2 blocks at 64/128/256/512 channels (512-d)."""
    trunk, dim = _resnet(in_channels, (64, 128, 256, 512), (2, 2, 2, 2), projection=True)
    return Encoder(Normalize(mean, std), trunk, dim)


def resnet32(in_channels: int, mean: Sequence[float], std: Sequence[float]) -> Encoder:
    """CIFAR ResNet-32 (He et al. 2016, Sec. 4.2): 3 stages of 5 blocks at 16/32/64 channels."""
    trunk, dim = _resnet(in_channels, (16, 32, 64), (5, 5, 5), projection=False)
    return Encoder(Normalize(mean, std), trunk, dim)


def small_cnn(
    in_channels: int, mean: Sequence[float], std: Sequence[float], width: int = 32
) -> Encoder:
    """Four 3x3 conv-BN-ReLU layers at width, 2w, 4w, 4w channels; 2x2 max-pools after the
    second and third (none on images smaller than 16 px, where pooling leaves too little).

    Fast enough for CPU runs on 8x8 digits and 28x28 Fashion-MNIST; feature_dim = 4 * width.
    """

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        ]

    trunk = nn.Sequential(
        *block(in_channels, width),
        *block(width, 2 * width),
        _MaybePool(),
        *block(2 * width, 4 * width),
        _MaybePool(),
        *block(4 * width, 4 * width),
    )
    return Encoder(Normalize(mean, std), trunk, 4 * width)


class _MaybePool(nn.Module):
    """2x2 max-pool on feature maps of at least 16 px, identity below (8x8 digits)."""

    min_size = 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < self.min_size:
            return x
        return nn.functional.max_pool2d(x, 2)


def build_encoder(
    config: ModelConfig, in_channels: int, mean: Sequence[float], std: Sequence[float]
) -> Encoder:
    """The configured backbone (raises ValueError for an unknown ``config.arch``)."""
    if config.arch == "small_cnn":
        return small_cnn(in_channels, mean, std, config.width)
    if config.arch == "resnet18":
        return resnet18(in_channels, mean, std)
    if config.arch == "resnet32":
        return resnet32(in_channels, mean, std)
    raise ValueError(f"model.arch must be small_cnn, resnet18 or resnet32; got {config.arch!r}")


class ProjectionHead(nn.Module):
    """Linear -> ReLU -> Linear, the stage-1 head (the release uses 512 -> 2048 -> 128)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Classifier(nn.Module):
    """An encoder followed by a linear layer (or ``head``); returns logits (B, num_classes)."""

    def __init__(self, encoder: Encoder, num_classes: int, head: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head: nn.Module = nn.Linear(encoder.feature_dim, num_classes) if head is None else head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class NormedLinear(nn.Module):
    """Cosine logits: ``normalize(x) @ normalize(W)`` (C,) per row, in [-1, 1], no bias (the
    head of LDAM, Cao et al. 2019, whose loss scales them)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = nn.functional.normalize(self.weight, dim=0)
        return nn.functional.normalize(x, dim=1) @ w
