"""History of generated images for the discriminators (Shrivastava et al., 2017).

Showing the discriminator a mix of the newest fakes and fakes from earlier generator states
damps oscillation. CycleGAN keeps 50 per direction.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["ImagePool"]


class ImagePool:
    """A buffer of up to ``pool_size`` generated images.

    ``query(images)`` returns a batch of the same shape: while the pool fills, the new images
    themselves; afterwards each image is, with probability 1/2, swapped for a random stored one
    (which the new image replaces in the pool). ``pool_size=0`` disables the pool.

    Randomness comes from a private ``torch.Generator`` seeded from ``seed``; its state and the
    stored images are part of :meth:`state_dict`, so a resumed run draws the same images.

    Args:
        pool_size: number of images kept.
        seed: seed for the pool's own random draws.
    """

    def __init__(self, pool_size: int = 50, *, seed: int = 0) -> None:
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = pool_size
        self.images: list[Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        """Mix ``images`` (B, C, H, W) with the history; returns (B, C, H, W), detached."""
        images = images.detach()
        if self.pool_size == 0:
            return images
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                index = int(torch.randint(self.pool_size, (), generator=self.generator))
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, dim=0)

    def state_dict(self) -> dict[str, Any]:
        """Stored images (on the CPU, as one tensor) and the generator state."""
        stacked = torch.cat(self.images).cpu() if self.images else torch.empty(0)
        return {
            "pool_size": self.pool_size,
            "images": stacked,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        """Restore from :meth:`state_dict`; images are moved to ``device``."""
        self.pool_size = int(state["pool_size"])
        images = state["images"]
        self.images = [im.unsqueeze(0).to(device) for im in images] if images.numel() else []
        self.generator.set_state(state["generator"])
