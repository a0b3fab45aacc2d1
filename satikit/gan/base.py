"""Adapter base classes of the built-in GANs: the shared constructor, optimisers and, for the
two-domain VAE-GANs (UNIT, MUNIT), the discriminator step. See
:class:`satikit.protocols.Adapter` for what an adapter provides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from satikit.encoding import Domain, to_domain
from satikit.gan.discriminators import (
    MultiScaleDiscriminator,
    PatchDiscriminator,
    adversarial_loss,
)
from satikit.gan.layers import init_weights
from satikit.protocols import Optimizers
from satikit.training.optim import adam_with_linear_decay

__all__ = ["AdapterBase", "DomainGenerator", "TwoDomainAdapter"]


class DomainGenerator(nn.Module):
    """A tanh generator whose output is mapped into ``domain``'s encoded range (paper III-C):
    ``(B, C_in, *S)`` -> ``(B, C_out, *S)``, Y in [0, 1] / X in [-1, 0] with domain encoding,
    both in [-1, 1] without. State-dict keys: ``net.<the generator's keys>``."""

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
    Adam with constant-then-linear decay
    (:func:`satikit.training.optim.adam_with_linear_decay`) over :meth:`generator_parameters`
    and :meth:`discriminator_parameters`.

    Subclasses build their networks after ``super().__init__(**kwargs)``, define
    :meth:`discriminator_parameters` and store the detached fake X of each generator step in
    ``_fake_x``.

    Args:
        dims: spatial dimensions.
        in_channels / out_channels: channels of X / Y images.
        domain_encoding: generators map to encoded domain ranges (SATI III-C).
        **options: the hyperparameters the adapter's plugin declares; the optimiser reads
            ``lr``, ``beta1``, ``beta2``, ``lr_decay_start`` and, if declared, ``weight_decay``;
            an identity loss (``lambda_idt`` > 0) needs as many X as Y channels.
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
        if self.options.get("lambda_idt", 0) > 0 and in_channels != out_channels:
            raise ValueError(
                f"the identity loss needs as many X as Y channels ({in_channels} vs "
                f"{out_channels}); pass -o lambda_idt 0"
            )

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


class TwoDomainAdapter(AdapterBase):
    """What UNIT and MUNIT share: LSGAN on multi-scale discriminators, Adam with weight decay
    and linear decay, no host state beyond the weights.

    Takes :class:`AdapterBase`'s arguments (``dims`` 1, 2 or 3). Subclasses build their
    networks, expose ``generator_xy`` and ``discriminator_x`` / ``discriminator_y`` (e.g. with
    :meth:`_discriminators`), and store the detached fake X of each generator step in
    ``_fake_x``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.dims not in (1, 2, 3):
            raise ValueError(f"dims must be 1, 2 or 3, got {self.dims!r}")

    def _initialise(self) -> None:
        """Discriminators (and, with ``gen_init="normal"``, everything) from N(0, init_gain);
        with ``gen_init="kaiming"`` the generators' conv and linear layers He-normal, as the
        UNIT / MUNIT reference configurations do (their discriminators stay N(0, 0.02))."""
        o = self.options
        init_weights(self, o["init_gain"])
        if o.get("gen_init", "normal") != "normal":
            skip = {
                id(m) for d in (self.discriminator_x, self.discriminator_y) for m in d.modules()
            }
            for module in self.children():
                if id(module) not in skip:
                    init_weights(module, scheme=o["gen_init"])

    def _discriminators(self, channels: int) -> MultiScaleDiscriminator | PatchDiscriminator:
        """The papers' multi-scale discriminator (``discriminator="multiscale"``), or
        CycleGAN's PatchGAN (``"patch"``: instance norm, ``d_layers`` stride-2 layers,
        ``n_scales`` unused), whose 70 px receptive field at ``d_layers=3`` sees a
        full-resolution texture the multi-scale one sees in 22 px patches."""
        o = self.options
        kind = o.get("discriminator", "multiscale")
        if kind == "patch":
            return PatchDiscriminator(self.dims, channels, ndf=o["ndf"], n_layers=o["d_layers"])
        if kind != "multiscale":
            raise ValueError(f"discriminator must be 'multiscale' or 'patch', got {kind!r}")
        return MultiScaleDiscriminator(
            self.dims, channels, ndf=o["ndf"], n_layers=o["d_layers"], n_scales=o["n_scales"]
        )

    def criterion(self, prediction: Tensor | Sequence[Tensor], target_is_real: bool) -> Tensor:
        """LSGAN (paper default) or vanilla loss, summed over the discriminator's scales."""
        return adversarial_loss(prediction, target_is_real, self.options["gan_loss"])

    def discriminator_step(self, x: Tensor, y: Tensor, y_hat_x: Tensor) -> Tensor:
        """``λ_gan`` x (real + fake) losses of ``D_Y`` and ``D_X`` on the step's fakes."""
        if self._fake_x is None:
            raise RuntimeError("discriminator_step must follow generator_step on the same batch")
        lam = self.options["lambda_gan"]
        d_y = lam * (
            self.criterion(self.discriminator_y(y), True)
            + self.criterion(self.discriminator_y(y_hat_x.detach()), False)
        )
        d_x = lam * (
            self.criterion(self.discriminator_x(x), True)
            + self.criterion(self.discriminator_x(self._fake_x), False)
        )
        self.loss_terms = {**self.loss_terms, "d_y": d_y.detach(), "d_x": d_x.detach()}
        return d_y + d_x

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Parameters of ``D_X`` and ``D_Y``; the optimiser is :class:`AdapterBase`'s (papers:
        Adam, lr 1e-4, betas (0.5, 0.999), weight decay 1e-4, constant then linear decay)."""
        return list(self.discriminator_x.parameters()) + list(self.discriminator_y.parameters())

    def training_state(self) -> dict[str, Tensor]:
        """Nothing beyond the weights (no image pool)."""
        return {}

    def load_training_state(self, state: Mapping[str, Tensor]) -> None:
        """Nothing to restore (see :meth:`training_state`)."""
