"""The MUNIT adapter (Huang et al. 2018): content + style codes, AdaIN decoders, N(0, I) styles.

Multimodal output is exactly what breaks tiling: two tiles decoded with different styles do not
match at the seam. So:

* at inference every tile of one large image is decoded with **one** style code, drawn from
  N(0, I) with a seed (:meth:`MUNITAdapter.style_from_seed`, ``translate(x, seed=...)``) or
  encoded from a reference Y image (:meth:`MUNITAdapter.encode_style`,
  ``translate(x, style=...)``);
* in SATI training ``G_XY`` (:class:`MUNITTranslator`) decodes ``z`` with the style sampled in the
  step's :meth:`~MUNITAdapter.generator_step`, so ``ŷ_x`` and ``ŷ_z`` share their style and the
  stitch loss compares like with like.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satikit.encoding import Domain, to_domain
from satikit.gan.autoencoder import Encoder
from satikit.gan.base import TwoDomainAdapter

from .networks import StyleDecoder, StyleEncoder

__all__ = ["MUNITAdapter", "MUNITTranslator", "build_munit", "sample_style"]


def sample_style(
    batch: int, style_dim: int, *, seed: int | None = None, device: Any = None
) -> Tensor:
    """Style codes from N(0, I): ``(batch, style_dim)``.

    With ``seed`` the draw comes from its own CPU generator (identical on every device and call);
    without, from the global torch RNG (seeded by the trainer).
    """
    if seed is None:
        return torch.randn(batch, style_dim, device=device)
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randn(batch, style_dim, generator=generator).to(device)


class MUNITTranslator(nn.Module):
    """One MUNIT direction with a current style: ``decode_T(content_S(.), style)``.

    ``style`` is the ``(B, style_dim)`` (or ``(1, style_dim)``) code to decode with; it is set by
    :meth:`MUNITAdapter.generator_step` for the duration of one training step (so SATI's
    ``G_XY(z)`` uses the step's style) and is otherwise ``default_style``.
    Input ``(B, C_s, *S)`` encoded source values; output ``(B, C_t, *S)`` in the target range.
    """

    def __init__(
        self,
        content_encoder: Encoder,
        decoder: StyleDecoder,
        domain: Domain,
        *,
        encoding: bool,
        default_style: Tensor,
    ) -> None:
        super().__init__()
        self.content_encoder, self.decoder = content_encoder, decoder
        self.domain, self.encoding = domain, encoding
        self.default_style = default_style
        self.style: Tensor | None = None

    def decode(self, content: Tensor, style: Tensor) -> Tensor:
        """Content code + style code -> image in the target domain's encoded range."""
        return to_domain(self.decoder(content, style), self.domain, enabled=self.encoding)

    def forward(self, x: Tensor, style: Tensor | None = None) -> Tensor:
        if style is None:
            style = self.style if self.style is not None else self.default_style
        return self.decode(self.content_encoder(x), style.to(x.device))


class MUNITAdapter(TwoDomainAdapter):
    """MUNIT wrapped for SATI; see :class:`satikit.protocols.Adapter`.

    Modules (state-dict prefixes): ``content_encoder_x/y``, ``style_encoder_x/y``,
    ``decoder_x/y`` (AdaIN decoder with its MLP), ``discriminator_x/y``. ``generator_xy`` /
    ``generator_yx`` are :class:`MUNITTranslator` views over them.

    Takes :class:`~satikit.gan.base.TwoDomainAdapter`'s arguments; ``**options`` are the
    hyperparameters declared in :mod:`satikit_munit.plugin`.
    """

    name = "munit"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        dims, in_channels, out_channels = self.dims, self.in_channels, self.out_channels
        o = self.options
        self.style_dim = o["style_dim"]
        content = dict(dim=o["dim"], n_downsampling=o["n_downsampling"], n_res=o["n_res"])
        style = dict(dim=o["dim"], n_downsampling=o["style_downsampling"], style_dim=o["style_dim"])
        self.content_encoder_x = Encoder(dims, in_channels, **content)
        self.content_encoder_y = Encoder(dims, out_channels, **content)
        self.style_encoder_x = StyleEncoder(dims, in_channels, **style)
        self.style_encoder_y = StyleEncoder(dims, out_channels, **style)
        decoder = dict(
            n_upsampling=o["n_downsampling"],
            n_res=o["n_res"],
            style_dim=o["style_dim"],
            mlp_dim=o["mlp_dim"],
            mlp_layers=o["mlp_layers"],
            upsampling=o["upsampling"],
            noise_channels=o["noise_channels"],
        )
        latent = self.content_encoder_x.out_channels
        # spatial sizes must divide this (the translate step pads whole images to it)
        self.size_multiple = self.content_encoder_x.multiple
        self.decoder_x = StyleDecoder(dims, latent, in_channels, **decoder)
        self.decoder_y = StyleDecoder(dims, latent, out_channels, **decoder)
        self.discriminator_x = self._discriminators(in_channels)
        self.discriminator_y = self._discriminators(out_channels)
        self._initialise()
        default = self.style_from_seed(None)
        # Views over the modules above; kept out of _modules so the state dict has no duplicates.
        self._views = (
            MUNITTranslator(
                self.content_encoder_x,
                self.decoder_y,
                "y",
                encoding=self.domain_encoding,
                default_style=default,
            ),
            MUNITTranslator(
                self.content_encoder_y,
                self.decoder_x,
                "x",
                encoding=self.domain_encoding,
                default_style=default,
            ),
        )

    @property
    def generator_xy(self) -> MUNITTranslator:
        """``G_XY``: encoded X (or merged Z) -> encoded Y with the current style."""
        return self._views[0]

    @property
    def generator_yx(self) -> MUNITTranslator:
        """``G_YX``: encoded Y -> encoded X with the current style."""
        return self._views[1]

    # -- styles ---------------------------------------------------------------------------
    def style_from_seed(self, seed: int | None) -> Tensor:
        """The style code ``(1, style_dim)`` of ``seed`` (None: the ``style_seed`` option)."""
        seed = self.options["style_seed"] if seed is None else seed
        return sample_style(1, self.style_dim, seed=seed)

    @torch.no_grad()
    def encode_style(self, y: Tensor) -> Tensor:
        """Style of a reference Y image: ``(B, C_y, *S)`` encoded Y -> ``(1, style_dim)`` (the
        mean over the batch, so several crops of one reference give one style)."""
        return self.style_encoder_y(y).mean(dim=0, keepdim=True)

    # -- training -------------------------------------------------------------------------
    def generator_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """MUNIT generator loss (paper eq. 5: adversarial, image and latent reconstruction,
        optional style-augmented cycle; beyond the paper, an optional identity loss that
        decodes the other domain's content of an image with its own style) and ``ŷ_x = G_Y(c_x, s_y)``, ``s_y ~ N(0, I)``.

        Sets ``generator_xy.style = s_y`` (and ``generator_yx.style = s_x``) until
        :meth:`discriminator_step`, so SATI's ``ŷ_z = G_XY(z)`` uses the same style as ``ŷ_x``.
        """
        o = self.options
        xy, yx = self._views
        c_x, c_y = self.content_encoder_x(x), self.content_encoder_y(y)
        s_x_own, s_y_own = self.style_encoder_x(x), self.style_encoder_y(y)
        s_x = sample_style(x.shape[0], self.style_dim, device=x.device)
        s_y = sample_style(y.shape[0], self.style_dim, device=y.device)
        fake_y, fake_x = xy.decode(c_x, s_y), yx.decode(c_y, s_x)
        c_x_rec, s_y_rec = self.content_encoder_y(fake_y), self.style_encoder_y(fake_y)
        c_y_rec, s_x_rec = self.content_encoder_x(fake_x), self.style_encoder_x(fake_x)
        terms = {
            "adv_xy": o["lambda_gan"] * self.criterion(self.discriminator_y(fake_y), True),
            "adv_yx": o["lambda_gan"] * self.criterion(self.discriminator_x(fake_x), True),
            "rec_x": o["lambda_x"] * F.l1_loss(yx.decode(c_x, s_x_own), x),
            "rec_y": o["lambda_x"] * F.l1_loss(xy.decode(c_y, s_y_own), y),
            "rec_c_x": o["lambda_c"] * F.l1_loss(c_x_rec, c_x),
            "rec_c_y": o["lambda_c"] * F.l1_loss(c_y_rec, c_y),
            "rec_s_x": o["lambda_s"] * F.l1_loss(s_x_rec, s_x),
            "rec_s_y": o["lambda_s"] * F.l1_loss(s_y_rec, s_y),
        }
        if o["lambda_cycle"] > 0:
            terms["cycle_x"] = o["lambda_cycle"] * F.l1_loss(yx.decode(c_x_rec, s_x_own), x)
            terms["cycle_y"] = o["lambda_cycle"] * F.l1_loss(xy.decode(c_y_rec, s_y_own), y)
        if o["lambda_idt"] > 0:  # beyond the paper: CycleGAN's identity loss, own styles
            idt_y = xy.decode(self.content_encoder_x(y), s_y_own)
            idt_x = yx.decode(self.content_encoder_y(x), s_x_own)
            terms["idt_y"] = o["lambda_idt"] * F.l1_loss(idt_y, y)
            terms["idt_x"] = o["lambda_idt"] * F.l1_loss(idt_x, x)
        xy.style, yx.style = s_y.detach(), s_x.detach()
        self._fake_x = fake_x.detach()
        self.loss_terms = {key: value.detach() for key, value in terms.items()}
        return sum(terms.values()), fake_y  # type: ignore[return-value]

    def discriminator_step(self, x: Tensor, y: Tensor, y_hat_x: Tensor) -> Tensor:
        """Discriminator losses (see :class:`~satikit.gan.base.TwoDomainAdapter`); ends the
        step's styles."""
        loss = super().discriminator_step(x, y, y_hat_x)
        for view in self._views:
            view.style = None
        return loss

    # -- inference ------------------------------------------------------------------------
    @torch.no_grad()
    def translate(
        self, x: Tensor, *, seed: int | None = None, style: Tensor | None = None
    ) -> Tensor:
        """Encoded X (or Z) tiles ``(B, C_x, *tile)`` -> encoded Y, all with one style.

        Args:
            x: a batch of tiles of one large image.
            seed: draws the style (same seed, same style, on every call: pass the image's seed
                with every batch of its tiles); None: the ``style_seed`` option.
            style: ``(1, style_dim)`` code to use instead, e.g. from :meth:`encode_style`.
        """
        if style is None:
            style = self.style_from_seed(seed)
        return self.generator_xy.decode(self.content_encoder_x(x), style.to(x.device))


def build_munit(**kwargs: Any) -> MUNITAdapter:
    """Factory registered as ``munit`` (see :class:`satikit.protocols.AdapterFactory`)."""
    return MUNITAdapter(**kwargs)
