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
from satikit.optim import adam_with_linear_decay, linear_decay
from satikit.protocols import Optimizers

from .networks import PatchDiscriminator, ResnetGenerator, init_weights
from .pool import ImagePool

# linear_decay is re-exported: it lived here before satikit.optim.
__all__ = ["AdapterBase", "CycleGANAdapter", "DomainGenerator", "linear_decay"]


class DomainGenerator(nn.Module):
    """A tanh generator whose output is mapped into ``domain``'s encoded range."""

    def __init__(self, net: nn.Module, domain: Domain, *, encoding: bool) -> None:
        super().__init__()
        self.net = net
        self.domain = domain
        self.encoding = encoding

    def forward(self, x: Tensor) -> Tensor:
        return to_domain(self.net(x), self.domain, enabled=self.encoding)


class AdapterBase(nn.Module):
    """What the built-in adapters share: the factory's arguments (see
    :class:`satikit.protocols.AdapterFactory`), the record of the last step's loss terms, and
    Adam with constant-then-linear decay (:func:`satikit.optim.adam_with_linear_decay`) over
    :meth:`generator_parameters` and :meth:`discriminator_parameters`.

    Subclasses build their networks after ``super().__init__(**kwargs)``, define
    :meth:`discriminator_parameters` and store the detached fake X of each generator step in
    ``_fake_x``.

    Args:
        dims: spatial dimensions.
        in_channels / out_channels: channels of X / Y images.
        domain_encoding: generators map to encoded domain ranges (SATI III-C).
        **options: the hyperparameters the adapter's plugin declares; the optimiser reads
            ``lr``, ``beta1``, ``beta2``, ``lr_decay_start`` and, if declared, ``weight_decay``.
    """

    name = ""

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
        self.loss_terms: dict[str, Tensor] = {}
        self._fake_x: Tensor | None = None

    def generator_parameters(self) -> list[nn.Parameter]:
        """Every parameter outside the discriminators, each once, in module order."""
        skip = {id(p) for p in self.discriminator_parameters()}
        return [p for p in self.parameters() if id(p) not in skip]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Parameters of the discriminators, in the order the optimiser keeps them."""
        raise NotImplementedError

    def configure_optimizers(self, total_steps: int) -> Optimizers:
        """Adam (``lr``, betas ``(beta1, beta2)``, ``weight_decay``) with constant-then-linear
        decay to 0 after ``lr_decay_start`` of the steps (CycleGAN, UNIT, MUNIT papers)."""
        o = self.options
        return adam_with_linear_decay(
            self.generator_parameters(),
            self.discriminator_parameters(),
            total_steps,
            lr=o["lr"],
            betas=(o["beta1"], o["beta2"]),
            weight_decay=o.get("weight_decay", 0),
            decay_start=o["lr_decay_start"],
        )


class CycleGANAdapter(AdapterBase):
    """CycleGAN wrapped for SATI; see :class:`satikit.protocols.Adapter`.

    Takes :class:`AdapterBase`'s arguments; ``**options`` are the hyperparameters declared in
    :mod:`satikit_cyclegan.plugin`.
    """

    name = "cyclegan"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        o, dims = self.options, self.dims
        in_channels, out_channels = self.in_channels, self.out_channels
        if o["lambda_idt"] > 0 and in_channels != out_channels:
            raise ValueError(
                f"the identity loss needs as many X as Y channels ({in_channels} vs "
                f"{out_channels}); pass -o lambda_idt 0"
            )
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


def build_cyclegan(**kwargs: Any) -> CycleGANAdapter:
    """Factory registered as ``cyclegan`` (see :class:`satikit.protocols.AdapterFactory`)."""
    return CycleGANAdapter(**kwargs)
