"""Image pool: the discriminator sees a history of generated images (Shrivastava et al. 2017;
CycleGAN, paper IV)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

__all__ = ["ImagePool"]


class ImagePool:
    """Buffer of up to ``size`` earlier fakes.

    While not full, every query image is stored and returned. Once full, each image is, with
    probability 1/2, swapped for a random stored one (which is returned), else returned as is.
    ``size == 0`` disables the pool. Randomness comes from the pool's own generator, so its
    state can be saved for an exact resume.
    """

    def __init__(self, size: int, *, seed: int = 0) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: Tensor) -> Tensor:
        """Return a batch like ``images`` (detached), mixing in stored fakes."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                index = int(torch.randint(len(self.images), (), generator=self.generator))
                out.append(self.images[index])
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Tensor]:
        """Stored images ``(n, C, *spatial)`` (on CPU) and the generator state."""
        state = {"rng": self.generator.get_state()}
        if self.images:
            state["images"] = torch.stack(self.images).cpu()
        return state

    def load_state_dict(self, state: Mapping[str, Tensor], device: torch.device | str) -> None:
        """Restore what :meth:`state_dict` returned, images moved to ``device``."""
        self.generator.set_state(state["rng"])
        images = state.get("images")
        self.images = [] if images is None else list(images.to(device).unbind(0))
