"""The CycleGAN adapter (paper IV): two generators, two discriminators, LSGAN, cycle + identity.

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

from satikit.encoding import Domain, to_domain
from satikit.protocols import Optimizers

from .networks import PatchDiscriminator, ResnetGenerator, init_weights
from .pool import ImagePool

__all__ = ["CycleGANAdapter", "DomainGenerator", "linear_decay"]


class DomainGenerator(nn.Module):
    """A tanh generator whose output is mapped into ``domain``'s encoded range."""

    def __init__(self, net: nn.Module, domain: Domain, *, encoding: bool) -> None:
        super().__init__()
        self.net = net
        self.domain = domain
        self.encoding = encoding

    def forward(self, x: Tensor) -> Tensor:
        return to_domain(self.net(x), self.domain, enabled=self.encoding)


def linear_decay(total_steps: int, start_fraction: float) -> Any:
    """LR factor: 1 for the first ``start_fraction`` of training, then linearly down to 0."""
    start = int(round(total_steps * start_fraction))
    span = max(total_steps - start, 1)

    def factor(step: int) -> float:
        return 1.0 if step < start else max(0.0, 1.0 - (step - start) / span)

    return factor


class CycleGANAdapter(nn.Module):
    """CycleGAN wrapped for SATI; see :class:`satikit.protocols.Adapter`.

    Args:
        dims: spatial dimensions (2 or 3).
        in_channels / out_channels: channels of X / Y images.
        domain_encoding: generators map to encoded domain ranges (paper III-C).
        **options: the hyperparameters declared in :mod:`satikit_cyclegan.plugin`.
    """

    name = "cyclegan"

    def __init__(
        self,
        *,
        dims: int,
        in_channels: int,
        out_channels: int,
        domain_encoding: bool = True,
        **options: Any,
    ) -> None:
        super().__init__()
        self.dims = dims
        self.options = dict(options)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.domain_encoding = domain_encoding
        o = self.options
        if o["lambda_idt"] > 0 and in_channels != out_channels:
            raise ValueError(
                f"the identity loss needs as many X as Y channels ({in_channels} vs "
                f"{out_channels}); pass -o lambda_idt 0"
            )
        generator = dict(ngf=o["ngf"], n_blocks=o["n_blocks"], n_downsampling=o["n_downsampling"])
        self.generator_xy = DomainGenerator(
            ResnetGenerator(dims, in_channels, out_channels, **generator),
            "y",
            encoding=domain_encoding,
        )
        self.generator_yx = DomainGenerator(
            ResnetGenerator(dims, out_channels, in_channels, **generator),
            "x",
            encoding=domain_encoding,
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
        self.loss_terms: dict[str, Tensor] = {}
        self._fake_x: Tensor | None = None

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
    def configure_optimizers(self, total_steps: int) -> Optimizers:
        """Adam (lr 2e-4, betas (0.5, 0.999)) with constant-then-linear decay (paper IV)."""
        o = self.options
        betas = (o["beta1"], o["beta2"])
        generators = list(self.generator_xy.parameters()) + list(self.generator_yx.parameters())
        discriminators = list(self.discriminator_y.parameters()) + list(
            self.discriminator_x.parameters()
        )
        opt_g = torch.optim.Adam(generators, lr=o["lr"], betas=betas)
        opt_d = torch.optim.Adam(discriminators, lr=o["lr"], betas=betas)
        factor = linear_decay(total_steps, o["lr_decay_start"])
        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in (opt_g, opt_d)]
        return Optimizers(opt_g, opt_d, schedulers)

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


def build_cyclegan(**kwargs: Any) -> CycleGANAdapter:
    """Factory registered as ``cyclegan`` (see :class:`satikit.protocols.AdapterFactory`)."""
    return CycleGANAdapter(**kwargs)
