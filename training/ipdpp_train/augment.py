"""Batched augmentations in plain torch, run on the device that holds the data.

Every function takes a whole batch ``x`` (float (B, C, H, W) in [0, 1], any device) and a
``torch.Generator`` on that device, so a batch costs a handful of kernel launches instead of a
per-image CPU pipeline, and the same generator seed gives the same views (resume relies on it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import AugmentConfig

__all__ = ["contrastive_view", "random_crop", "random_flip", "weak_augment"]

# Luma weights of ITU-R BT.601, what "convert to grayscale" means for RGB images.
_LUMA = (0.299, 0.587, 0.114)


def _uniform(
    shape: tuple[int, ...], low: float, high: float, x: torch.Tensor, g: torch.Generator
) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=g, device=x.device, dtype=x.dtype)


def _coin(n: int, p: float, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Bool (n,): True with probability p (always draws, so the stream does not depend on p)."""
    return torch.rand((n,), generator=g, device=x.device) < p


def crop_padding_for(image_size: int, padding: int | None) -> int:
    """The configured padding, or image_size // 8 (4 px for 32x32, 3 for 28x28, 1 for 8x8)."""
    return padding if padding is not None else max(1, image_size // 8)


def random_crop(x: torch.Tensor, padding: int, g: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` and cut a random H x W window per image (integer shifts)."""
    if padding == 0:
        return x
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (2, b), generator=g, device=x.device)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    # Advanced indexing on (B, H', W', C) gathers every image's window in one op.
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def random_flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = _coin(x.shape[0], 0.5, x, g)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def weak_augment(x: torch.Tensor, config: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """The supervised augmentation: random crop with zero padding, then (optionally) a flip."""
    x = random_crop(x, crop_padding_for(x.shape[-1], config.crop_padding), g)
    return random_flip(x, g) if config.flip else x


def _resized_crop(x: torch.Tensor, config: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """SimCLR's random resized crop as one batched affine resampling.

    Area fraction s ~ U(min_crop_scale, 1) and aspect ratio r ~ logU(3/4, 4/3) give a window of
    relative size (sqrt(s r), sqrt(s / r)), clipped to the image, at a uniform position; the
    window is stretched back to H x W with bilinear interpolation. Flip folds into the x scale.
    """
    b = x.shape[0]
    scale = _uniform((b,), config.min_crop_scale, 1.0, x, g)
    log_ratio = _uniform((b,), math.log(3 / 4), math.log(4 / 3), x, g)
    ratio = torch.exp(log_ratio)
    width = torch.sqrt(scale * ratio).clamp(max=1.0)
    height = torch.sqrt(scale / ratio).clamp(max=1.0)
    # Centres keep the window inside the image: |centre| <= 1 - size in normalised coordinates.
    cx = (1 - width) * _uniform((b,), -1.0, 1.0, x, g)
    cy = (1 - height) * _uniform((b,), -1.0, 1.0, x, g)
    flip = _coin(b, 0.5, x, g) & config.flip
    sign = 1.0 - 2.0 * flip.to(x.dtype)
    theta = torch.zeros((b, 2, 3), device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = width * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = height
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        return x.mean(dim=1, keepdim=True)
    weights = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def _jitter(x: torch.Tensor, config: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Brightness, contrast (and saturation for colour) factors in [1 - s, 1 + s], applied with
    probability ``jitter_probability``. Hue is left out: it needs an HSV round trip and carries
    no signal for the grayscale datasets this package is mostly run on."""
    b = x.shape[0]
    s = config.jitter_strength
    apply = _coin(b, config.jitter_probability, x, g)[:, None, None, None]
    brightness = _uniform((b, 1, 1, 1), 1 - s, 1 + s, x, g)
    contrast = _uniform((b, 1, 1, 1), 1 - s, 1 + s, x, g)
    saturation = _uniform((b, 1, 1, 1), 1 - s, 1 + s, x, g)
    y = (x * brightness).clamp(0, 1)
    mean = _gray(y).mean(dim=(1, 2, 3), keepdim=True)
    y = ((y - mean) * contrast + mean).clamp(0, 1)
    if x.shape[1] == 3:
        gray = _gray(y)
        y = ((y - gray) * saturation + gray).clamp(0, 1)
    return torch.where(apply, y, x)


def contrastive_view(x: torch.Tensor, config: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """One SimCLR-style view for stage 1, adapted to small (possibly grayscale) images.

    Random resized crop (+ flip when enabled), brightness/contrast/saturation jitter, random
    grayscale for colour images, and additive Gaussian noise in place of SimCLR's blur (a blur
    wipes out most of the content of an 8x8 or 28x28 image; noise perturbs texture without it).

    Parameters
    ----------
    x : torch.Tensor
        float (B, C, H, W) in [0, 1], on any device.
    config : AugmentConfig
        Strengths and probabilities.
    g : torch.Generator
        On ``x``'s device; the view is a deterministic function of its state.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``, values in [0, 1].
    """
    b = x.shape[0]
    y = _resized_crop(x, config, g)
    y = _jitter(y, config, g)
    if x.shape[1] == 3:
        to_gray = _coin(b, config.grayscale_probability, x, g)[:, None, None, None]
        y = torch.where(to_gray, _gray(y).expand_as(y), y)
    noisy = _coin(b, config.noise_probability, x, g)[:, None, None, None]
    noise = torch.randn(y.shape, generator=g, device=x.device, dtype=x.dtype) * config.noise_std
    return torch.where(noisy, (y + noise).clamp(0, 1), y)
