"""The SATI terms of a training step (paper Alg. 1), for any adapter.

Given the host's ``ŷ_x = G_XY(x)``: merge its leading strips into ``x`` (``z, M, W``, with
overlap sampling, III-B, and pixel overlap weighting, III-F), translate ``ŷ_z = G_XY(z)``, add
``L_adv^ZY + λ_stitch(t) · L_stitch`` (eq. 3; λ ramped, III-D) to the generator loss and
``crit(D_Y(ŷ_z.detach()), fake)`` to the discriminator loss. Beyond the paper and off by
default: strips taken from the neighbours' translations (``strip_source="neighbour"``), the
continuation term ``λ_cons(t) · L_cons``, a delayed start (``SATISettings.start``) and
``ŷ_z`` normalised with the statistics of a wider region (``statistics_context``).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor

from satikit.checkpoint import SATISettings
from satikit.devices import Context
from satikit.protocols import Adapter
from satikit.training.losses import (
    Schedule,
    consistency_loss,
    constant,
    linear_ramp,
    sati_discriminator_adv,
    sati_generator_adv,
    stitch_loss,
)
from satikit.training.sati_merge import draw_cases, merge
from satikit.training.shared_statistics import region_statistics

__all__ = ["GeneratorTerms", "SATIHooks"]

#: ``(x, ŷ_x, z, M, ŷ_z)`` of a step, each ``(B, C, *crop)``; the last three None without SATI.
Sample = tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None]


class GeneratorTerms:
    """What :meth:`SATIHooks.generator_loss` adds: the new generator loss, the detached terms
    (``adv_zy``, ``stitch``, ``lambda_stitch``, with the continuation term ``consistency``,
    ``lambda_consistency``), ``ŷ_z`` (None on a step without SATI) and the step's sample."""

    def __init__(
        self, loss: Tensor, terms: dict[str, Tensor], y_hat_z: Tensor | None, sample: Sample
    ) -> None:
        self.loss, self.terms, self.y_hat_z, self.sample = loss, terms, y_hat_z, sample


class SATIHooks:
    """The SATI part of every training step of a run.

    Args:
        sati: the resolved switches (:meth:`SATISettings.resolve`).
        crop: training crop, one size per spatial dim.
        steps: the run's total steps (the ramps span them).
        seed: seeds the merger's case draws.
    """

    def __init__(self, sati: SATISettings, crop: Sequence[int], steps: int, seed: int) -> None:
        self.sati, self.crop, self.steps = sati, tuple(crop), int(steps)
        self.merge_generator = torch.Generator().manual_seed(seed)
        self.lambda_stitch = self._schedule(sati.lambda_stitch)
        self.lambda_consistency = self._schedule(sati.lambda_consistency)

    @property
    def start_step(self) -> int:
        """First step with the SATI terms (``SATISettings.start`` of the run's steps)."""
        return round(self.sati.start * self.steps)

    def active(self, step: int) -> bool:
        """Whether step ``step`` (0-based) adds the SATI terms."""
        return self.sati.enabled and step >= self.start_step

    def _schedule(self, final: float | None) -> Schedule:
        """λ(t) of a SATI term: 0 before :attr:`start_step`, then constant or (loss ramping,
        paper III-D) linear up to ``final`` at ``ramp_end`` of the steps."""
        final, begin = float(final or 0.0), self.start_step
        if not self.sati.loss_ramping:
            return constant(final)  # the terms are off before `begin` anyway
        end = max(begin + 1, round(self.sati.ramp_end * self.steps))
        return linear_ramp(final, begin, end)

    # -- inputs ---------------------------------------------------------------------------
    def split_context(self, x: Tensor) -> tuple[Tensor | None, Tensor]:
        """``(context, crop)``: the sampled region and its crop window (the trailing one with
        ``strip_source="neighbour"``, the centre one with ``statistics_context > 1``); or
        ``(None, x)`` when X is sampled at the crop size."""
        expected = self.sati.sample_crop(self.crop)
        if expected == self.crop:
            return None, x
        if tuple(x.shape[2:]) != expected:
            raise ValueError(
                f"these SATI settings need X batches of spatial size {expected} "
                f"(SATISettings.sample_crop), got {tuple(x.shape[2:])}"
            )
        shift = [e - c for e, c in zip(expected, self.crop)]
        if self.sati.statistics_context > 1:
            shift = [s // 2 for s in shift]
        window = (slice(s, s + c) for s, c in zip(shift, self.crop))
        return x, x[(slice(None), slice(None), *window)]

    def statistics(self, adapter: Adapter, context: Tensor | None) -> Any:
        """The block to run ``G_XY(z)`` in: with ``statistics_context > 1`` the statistics of
        ``G_XY(context)`` (:func:`region_statistics`), else the crop's own."""
        if context is None or self.sati.statistics_context == 1:
            return nullcontext()
        return region_statistics(adapter, adapter.generator_xy, context)

    @torch.no_grad()
    def neighbour_strips(self, adapter: Adapter, context: Tensor, own: Tensor) -> Tensor:
        """``own`` with each leading strip replaced by the trailing strip of the neighbour's
        translation along that axis (no gradient, like ``ŷ_x.detach()``): ``(B, C_y, *crop)``.
        Where strips cross (corners), the last axis's neighbour wins."""
        overlap = int(self.sati.overlap or 0)
        shift = [s - c for s, c in zip(context.shape[2:], self.crop)]
        strips = own.clone()
        for axis in range(len(self.crop)):
            window = [slice(s, None) for s in shift]
            window[axis] = slice(0, self.crop[axis])  # the neighbour ends `overlap` into the crop
            neighbour = adapter.generator_xy(context[(slice(None), slice(None), *window)])
            inside = [slice(None)] * len(self.crop)
            inside[axis] = slice(0, overlap)
            trailing = [slice(None)] * len(self.crop)
            trailing[axis] = slice(self.crop[axis] - overlap, None)
            strips[(slice(None), slice(None), *inside)] = neighbour[
                (slice(None), slice(None), *trailing)
            ].to(strips.dtype)
        return strips

    def merge_cases(self, batch_size: int, dist: Context) -> Tensor | None:
        """This rank's share of the global batch's merger cases (None: no overlap sampling)."""
        if not self.sati.overlap_sampling:
            return None
        drawn = draw_cases(batch_size * dist.world_size, len(self.crop), self.merge_generator)
        return drawn[dist.shard(batch_size)]

    # -- losses ---------------------------------------------------------------------------
    def generator_loss(
        self,
        adapter: Adapter,
        step: int,
        batch: tuple[Tensor, Tensor | None],
        y_hat_x: Tensor,
        loss: Tensor,
        dist: Context,
    ) -> GeneratorTerms:
        """The generator loss ``loss`` of the host plus, on an :meth:`active` step, the SATI
        terms (paper eq. 3).

        Args:
            adapter: the wrapped GAN.
            step: the step (0-based).
            batch: ``(x, context)``: the X crops ``(B, C, *crop)`` and, with
                ``strip_source="neighbour"`` or ``statistics_context > 1``, the wider region
                they were cut from (else None).
            y_hat_x: the host's ``G_XY(x)`` (with its graph).
            loss: the host's generator loss.
            dist: the process group (this rank draws its share of the merger cases).
        """
        x, context = batch
        if not self.active(step):
            return GeneratorTerms(loss, {}, None, (x, y_hat_x.detach(), None, None, None))
        strips = y_hat_x.detach()
        if context is not None and self.sati.strip_source == "neighbour":
            strips = self.neighbour_strips(adapter, context, strips)
        z, mask, weight = merge(
            x,
            strips,
            self.sati.overlap,
            generator=self.merge_generator,
            cases="all" if self.sati.overlap_sampling else "leading",
            weighting=self.sati.pixel_weighting,
            case_index=self.merge_cases(x.shape[0], dist),
        )
        with self.statistics(adapter, context):
            y_hat_z = adapter.generator_xy(z)
        adv = sati_generator_adv(adapter.criterion, adapter.discriminator_y, y_hat_z)
        stitch = stitch_loss(y_hat_z.float(), z.float(), mask, weight.float())
        lam = self.lambda_stitch(step)
        loss = loss + adv + lam * stitch
        terms = {"adv_zy": adv.detach(), "stitch": stitch.detach()}
        terms["lambda_stitch"] = torch.tensor(lam)
        if self.sati.lambda_consistency > 0:
            cons = consistency_loss(y_hat_z.float(), y_hat_x.detach().float(), mask)
            lam_cons = self.lambda_consistency(step)
            loss = loss + lam_cons * cons
            terms.update(consistency=cons.detach(), lambda_consistency=torch.tensor(lam_cons))
        sample = (x, y_hat_x.detach(), z, mask, y_hat_z.detach())
        return GeneratorTerms(loss, terms, y_hat_z, sample)

    def discriminator_loss(
        self, adapter: Adapter, y_hat_z: Tensor | None, loss: Tensor, terms: dict[str, Tensor]
    ) -> Tensor:
        """The host's discriminator ``loss`` plus ``λ_D · crit(D_Y(ŷ_z.detach()), fake)`` (Alg. 1)
        when the step had SATI terms; records ``d_sati`` in ``terms``."""
        if y_hat_z is None:
            return loss
        d_sati = sati_discriminator_adv(adapter.criterion, adapter.discriminator_y, y_hat_z)
        terms["d_sati"] = d_sati.detach()
        return loss + self.sati.lambda_d_sati * d_sati
