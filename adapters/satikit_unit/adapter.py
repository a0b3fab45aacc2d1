"""The UNIT adapter (Liu et al. 2017): VAE-GANs coupled through a shared latent space.

Per domain an encoder ``E`` (private layers, then high-level layers *shared* by both domains)
and a generator / decoder ``G`` (shared first layers, then private ones); ``q(h | x) = N(E(x), I)``
(the paper's unit-variance encoder). SATI wraps ``G_XY = decode_Y(encode_X(.))``
(:class:`UNITTranslator`) and ``D_Y``; the host losses are the paper's: adversarial, KL,
reconstruction, and cycle reconstruction with its KL term (and, beyond the paper, CycleGAN's
identity loss with ``lambda_idt`` > 0).

Every generator's tanh output is mapped to its target domain with
:func:`satikit.encoding.to_domain`, so reconstruction and cycle losses compare like with like.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satikit.encoding import Domain, to_domain
from satikit.gan.autoencoder import Decoder, Encoder
from satikit.gan.base import TwoDomainAdapter
from satikit.gan.resnet import ResnetBlock

__all__ = ["UNITAdapter", "UNITTranslator", "build_unit", "kl_loss"]


def kl_loss(mu: Tensor) -> Tensor:
    """KL(N(mu, I) || N(0, I)) per latent element, up to the factor 1/2: ``mean(mu^2)``."""
    return mu.pow(2).mean()


class UNITTranslator(nn.Module):
    """One translation direction of UNIT: ``decode_T(shared_dec(shared_enc(encode_S(.))))``.

    In training mode the latent is sampled (:meth:`sample`: ``mu + latent_noise * N(0, I)``,
    paper eq. 1 with ``latent_noise`` 1), in evaluation mode the mean is used. Input
    ``(B, C_s, *S)`` encoded source values; output ``(B, C_t, *S)`` in the target domain's
    encoded range.
    """

    def __init__(
        self,
        encoder: Encoder,
        shared_encoder: nn.Module,
        shared_decoder: nn.Module,
        decoder: Decoder,
        domain: Domain,
        *,
        encoding: bool,
        latent_noise: float = 1.0,
    ) -> None:
        super().__init__()
        self.latent_noise = float(latent_noise)
        self.encoder, self.shared_encoder = encoder, shared_encoder
        self.shared_decoder, self.decoder = shared_decoder, decoder
        self.domain, self.encoding = domain, encoding

    def encode(self, x: Tensor) -> Tensor:
        """Latent mean ``mu = E(x)``: ``(B, C_h, *S / 2**n_downsampling)``."""
        return self.shared_encoder(self.encoder(x))

    def decode(self, h: Tensor) -> Tensor:
        """Latent -> image in the target domain's encoded range."""
        return to_domain(self.decoder(self.shared_decoder(h)), self.domain, enabled=self.encoding)

    def sample(self, mu: Tensor) -> Tensor:
        """``z = mu + latent_noise * N(0, I)`` (paper eq. 1: unit variance)."""
        return mu + self.latent_noise * torch.randn_like(mu)

    def forward(self, x: Tensor) -> Tensor:
        mu = self.encode(x)
        return self.decode(self.sample(mu) if self.encoder.training else mu)


class UNITAdapter(TwoDomainAdapter):
    """UNIT wrapped for SATI; see :class:`satikit.protocols.Adapter`.

    Modules (state-dict prefixes): ``encoder_x``, ``encoder_y``, ``shared_encoder``,
    ``shared_decoder``, ``decoder_x``, ``decoder_y``, ``discriminator_x``, ``discriminator_y``.
    ``generator_xy`` / ``generator_yx`` are :class:`UNITTranslator` views over them (not extra
    state-dict entries).

    Takes :class:`~satikit.gan.base.TwoDomainAdapter`'s arguments; ``**options`` are the hyperparameters declared
    in :mod:`satikit_unit.plugin`.
    """

    name = "unit"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        dims, in_channels, out_channels = self.dims, self.in_channels, self.out_channels
        o = self.options
        down, res = o["n_downsampling"], o["n_res"]
        self.encoder_x = Encoder(dims, in_channels, o["dim"], down, res)
        self.encoder_y = Encoder(dims, out_channels, o["dim"], down, res)
        latent = self.encoder_x.out_channels
        # spatial sizes must divide this (the translate step pads whole images to it)
        self.size_multiple = self.encoder_x.multiple
        self.shared_encoder = nn.Sequential(
            *[ResnetBlock(dims, latent) for _ in range(o["n_shared"])]
        )
        self.shared_decoder = nn.Sequential(
            *[ResnetBlock(dims, latent) for _ in range(o["n_shared"])]
        )
        up, norm = o["upsampling"], o["up_norm"]
        self.decoder_x = Decoder(dims, latent, in_channels, down, res, up, norm)
        self.decoder_y = Decoder(dims, latent, out_channels, down, res, up, norm)
        self.discriminator_x = self._discriminators(in_channels)
        self.discriminator_y = self._discriminators(out_channels)
        self._initialise()
        shared = (self.shared_encoder, self.shared_decoder)
        view = dict(encoding=self.domain_encoding, latent_noise=o["latent_noise"])
        # Views over the modules above; kept out of _modules so the state dict has no duplicates.
        self._views = (
            UNITTranslator(self.encoder_x, *shared, self.decoder_y, "y", **view),
            UNITTranslator(self.encoder_y, *shared, self.decoder_x, "x", **view),
        )

    @property
    def generator_xy(self) -> UNITTranslator:
        """``G_XY``: encoded X (or merged Z) -> encoded Y; samples the latent in training mode."""
        return self._views[0]

    @property
    def generator_yx(self) -> UNITTranslator:
        """``G_YX``: encoded Y -> encoded X."""
        return self._views[1]

    def generator_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """UNIT generator loss (paper eq. 2-5 with unit-variance encoders) and ``ŷ_x``.

        ``ŷ_x = G_Y(z_x)`` with ``z_x = E_X(x) + N(0, I)``, the same sample the X reconstruction
        uses (paper: one ``z_1 ~ q_1(z_1 | x_1)`` for both streams).
        """
        o = self.options
        xy, yx = self._views
        mu_x, mu_y = xy.encode(x), yx.encode(y)
        z_x, z_y = xy.sample(mu_x), yx.sample(mu_y)
        fake_y, fake_x = xy.decode(z_x), yx.decode(z_y)
        terms = {
            "adv_xy": o["lambda_gan"] * self.criterion(self.discriminator_y(fake_y), True),
            "adv_yx": o["lambda_gan"] * self.criterion(self.discriminator_x(fake_x), True),
            "rec_x": o["lambda_rec"] * F.l1_loss(yx.decode(z_x), x),
            "rec_y": o["lambda_rec"] * F.l1_loss(xy.decode(z_y), y),
            "kl_x": o["lambda_kl"] * kl_loss(mu_x),
            "kl_y": o["lambda_kl"] * kl_loss(mu_y),
        }
        if o["lambda_cycle"] > 0 or o["lambda_kl_cycle"] > 0:
            mu_x_cyc, mu_y_cyc = yx.encode(fake_y), xy.encode(fake_x)
            cyc_x = yx.decode(yx.sample(mu_x_cyc))
            cyc_y = xy.decode(xy.sample(mu_y_cyc))
            terms.update(
                {
                    "cycle_x": o["lambda_cycle"] * F.l1_loss(cyc_x, x),
                    "cycle_y": o["lambda_cycle"] * F.l1_loss(cyc_y, y),
                    "kl_cycle_x": o["lambda_kl_cycle"] * kl_loss(mu_x_cyc),
                    "kl_cycle_y": o["lambda_kl_cycle"] * kl_loss(mu_y_cyc),
                }
            )
        if o["lambda_idt"] > 0:  # beyond the paper: CycleGAN's identity loss
            terms["idt_y"] = o["lambda_idt"] * F.l1_loss(xy.decode(xy.sample(xy.encode(y))), y)
            terms["idt_x"] = o["lambda_idt"] * F.l1_loss(yx.decode(yx.sample(yx.encode(x))), x)
        self._fake_x = fake_x.detach()
        self.loss_terms = {key: value.detach() for key, value in terms.items()}
        return sum(terms.values()), fake_y  # type: ignore[return-value]

    @torch.no_grad()
    def translate(self, x: Tensor, *, seed: int | None = None) -> Tensor:
        """Encoded X (or Z) tiles ``(B, C_x, *tile)`` -> encoded Y, from the latent mean (no
        sampling, so tiles agree); ``seed`` is ignored."""
        xy = self.generator_xy
        return xy.decode(xy.encode(x))


def build_unit(**kwargs: Any) -> UNITAdapter:
    """Factory registered as ``unit`` (see :class:`satikit.protocols.AdapterFactory`)."""
    return UNITAdapter(**kwargs)
