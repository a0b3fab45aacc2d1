"""The CycleGAN objective (Zhu et al. 2017; SATI paper IV): two generators, two PatchGAN
discriminators with image pools, LSGAN, cycle and identity losses.

Generators output tanh values mapped to their target domain with
:func:`satikit.encoding.to_domain`, so ``generator_xy`` outputs encoded Y and ``generator_yx``
encoded X, and the cycle / identity losses compare like with like.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satikit.gan.base import AdapterBase, DomainGenerator
from satikit.gan.discriminators import PatchDiscriminator
from satikit.gan.layers import init_weights
from satikit.gan.pool import ImagePool
from satikit.gan.resnet import ResnetGenerator

__all__ = ["CycleGANBase"]


class CycleGANBase(AdapterBase):
    """CycleGAN wrapped for SATI, with ResNet generators; see :class:`satikit.protocols.Adapter`.

    Takes :class:`~satikit.gan.base.AdapterBase`'s arguments; ``**options`` are
    :data:`satikit.gan.options.CYCLE_OPTIONS` plus the generator's ``ngf``, ``n_blocks`` and
    ``n_downsampling``. Subclasses set ``name``; one with other generators replaces
    ``generator_xy`` / ``generator_yx`` after this constructor (the timm adapter does).

    State-dict prefixes: ``generator_xy.net``, ``generator_yx.net``, ``discriminator_y``,
    ``discriminator_x``; the image pools are training state (:meth:`training_state`).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        o, dims = self.options, self.dims
        in_channels, out_channels = self.in_channels, self.out_channels
        generator = dict(ngf=o["ngf"], n_blocks=o["n_blocks"], n_downsampling=o["n_downsampling"])
        self.generator_xy = DomainGenerator(
            ResnetGenerator(dims, in_channels, out_channels, **generator),
            "y",
            encoding=self.domain_encoding,
        )
        self.generator_yx = DomainGenerator(
            ResnetGenerator(dims, out_channels, in_channels, **generator),
            "x",
            encoding=self.domain_encoding,
        )
        self.discriminator_y = PatchDiscriminator(
            dims, out_channels, ndf=o["ndf"], n_layers=o["n_layers"]
        )
        self.discriminator_x = PatchDiscriminator(
            dims, in_channels, ndf=o["ndf"], n_layers=o["n_layers"]
        )
        init_weights(self, o["init_gain"])
        # spatial sizes must divide this (the translate step pads whole images to it)
        self.size_multiple = 2 ** o["n_downsampling"]
        self.pool_y = ImagePool(o["pool_size"], seed=1)
        self.pool_x = ImagePool(o["pool_size"], seed=2)

    # -- losses ---------------------------------------------------------------------------
    def criterion(self, prediction: Tensor, target_is_real: bool) -> Tensor:
        """LSGAN (MSE to 1 / 0, paper IV) or vanilla (BCE on logits) adversarial loss."""
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        if self.options["gan_loss"] == "lsgan":
            return F.mse_loss(prediction, target)
        return F.binary_cross_entropy_with_logits(prediction, target)

    def _distance(self, a: Tensor, b: Tensor) -> Tensor:
        # Paper IV uses MSE for the cycle and identity losses.
        return F.mse_loss(a, b) if self.options["cycle_loss"] == "mse" else F.l1_loss(a, b)

    def generator_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """CycleGAN generator loss (paper eq. 3, first row) and ``ŷ_x = G_XY(x)``."""
        o = self.options
        fake_y = self.generator_xy(x)
        fake_x = self.generator_yx(y)
        terms = {
            "adv_xy": self.criterion(self.discriminator_y(fake_y), True),
            "adv_yx": self.criterion(self.discriminator_x(fake_x), True),
            "cycle_x": o["lambda_cycle"] * self._distance(self.generator_yx(fake_y), x),
            "cycle_y": o["lambda_cycle"] * self._distance(self.generator_xy(fake_x), y),
        }
        if o["lambda_idt"] > 0:
            terms["idt_y"] = o["lambda_idt"] * self._distance(self.generator_xy(y), y)
            terms["idt_x"] = o["lambda_idt"] * self._distance(self.generator_yx(x), x)
        self._fake_x = fake_x.detach()
        self.loss_terms = {key: value.detach() for key, value in terms.items()}
        return sum(terms.values()), fake_y  # type: ignore[return-value]

    def discriminator_step(self, x: Tensor, y: Tensor, y_hat_x: Tensor) -> Tensor:
        """LSGAN discriminator losses of D_Y and D_X, fakes drawn through the image pools."""
        if self._fake_x is None:
            raise RuntimeError("discriminator_step must follow generator_step on the same batch")
        fake_y = self.pool_y.query(y_hat_x)
        fake_x = self.pool_x.query(self._fake_x)
        d_y = 0.5 * (
            self.criterion(self.discriminator_y(y), True)
            + self.criterion(self.discriminator_y(fake_y), False)
        )
        d_x = 0.5 * (
            self.criterion(self.discriminator_x(x), True)
            + self.criterion(self.discriminator_x(fake_x), False)
        )
        self.loss_terms = {**self.loss_terms, "d_y": d_y.detach(), "d_x": d_x.detach()}
        return d_y + d_x

    # -- optimisation ---------------------------------------------------------------------
    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Parameters of ``D_Y`` and ``D_X``; the optimiser is :class:`AdapterBase`'s (paper IV:
        Adam, lr 2e-4, betas (0.5, 0.999), constant then linear decay)."""
        return list(self.discriminator_y.parameters()) + list(self.discriminator_x.parameters())

    # -- inference and state --------------------------------------------------------------
    @torch.no_grad()
    def translate(self, x: Tensor, *, seed: int | None = None) -> Tensor:
        """Encoded X (or Z) tiles ``(B, C_x, *tile)`` -> encoded Y ``(B, C_y, *tile)``."""
        return self.generator_xy(x)

    def training_state(self) -> dict[str, Tensor]:
        """Image pools (contents and RNG), needed for an exact resume."""
        state = {}
        for name, pool in (("pool_y", self.pool_y), ("pool_x", self.pool_x)):
            state.update({f"{name}.{key}": value for key, value in pool.state_dict().items()})
        return state

    def load_training_state(self, state: Mapping[str, Tensor]) -> None:
        """Restore the image pools from :meth:`training_state`."""
        device = next(self.parameters()).device
        for name, pool in (("pool_y", self.pool_y), ("pool_x", self.pool_x)):
            prefix = f"{name}."
            pool.load_state_dict(
                {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, device
            )
