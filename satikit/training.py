"""The SATI trainer: any adapter's own training step plus the SATI hooks (paper Alg. 1).

Per step, on a batch of random crops ``x`` (domain X) and ``y`` (domain Y):

1. ``loss_host, ŷ_x = adapter.generator_step(x, y)`` (the host's losses; ``ŷ_x`` reused);
2. ``z, M, W = merge(x, ŷ_x.detach(), overlap)`` (target treated as a constant; with
   ``strip_source="neighbour"``, beyond the paper, the strips come from the neighbours'
   translations instead);
3. ``ŷ_z = G_XY(z)``;
4. ``loss_G = loss_host + L_adv^ZY + λ_stitch(t) · L_stitch`` (paper eq. 3), plus, beyond
   the paper and off by default, ``λ_cons(t) · L_cons`` (:func:`satikit.losses.consistency_loss`);
   one generator optimizer step;
5. ``loss_D = host discriminator loss + crit(D_Y(ŷ_z.detach()), fake)``, one discriminator
   optimizer step; then the host's schedulers step.

With ``SATISettings(enabled=False)`` only the host steps run, so baselines share this code.
Every adaptation of the paper is a switch: overlap sampling (III-B), domain encoding (III-C),
loss ramping (III-D), pixel overlap weighting (III-F); the stitching strategy (III-E) is an
inference switch (:mod:`satikit.translate`). ``SATISettings.start`` delays the SATI terms to a
fraction of the run (the authors' code has such a start-epoch switch; the paper starts at 0).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from satikit import __version__, distributed
from satikit.checkpoint import (
    FORMAT,
    load_config,
    load_train_state,
    restore_weights,
    save_checkpoint,
)
from satikit.crops import CropSampler
from satikit.data.io import atomic_path, list_images
from satikit.encoding import decode
from satikit.losses import (
    Schedule,
    consistency_loss,
    constant,
    linear_ramp,
    sati_discriminator_adv,
    sati_generator_adv,
    stitch_loss,
)
from satikit.merger import draw_cases, merge
from satikit.plugins import get_adapter_info
from satikit.protocols import Adapter

__all__ = [
    "LOG_NAME",
    "SATISettings",
    "SATITrainer",
    "TrainConfig",
    "default_crop",
    "inference_defaults",
    "domain_images",
    "resolve_device",
]

LOG_NAME = "log.jsonl"
STRIP_SOURCES = ("crop", "neighbour")
SAMPLES_DIR = "samples"


@dataclass(frozen=True)
class SATISettings:
    """SATI switches (each one is an ablation of paper IV-B1).

    Attributes:
        enabled: add the SATI terms (False: plain host GAN, the "standard" baseline).
        overlap: width of the merged strips in training crops, px, below half the crop;
            None: 25 % of the crop (paper IV: 64 px for 256 px crops, 16 px for 64^3 crops).
        overlap_sampling: all ``2^N - 1`` border cases, uniformly (III-B); off: always all
            leading borders.
        domain_encoding: X in [-1, 0], Y in [0, 1] (III-C); off: both in [-1, 1], as the
            host GAN was published. None (default): on with SATI, off for the standard
            baseline (the paper's "Standard" models are plain CycleGAN, IV-B).
        loss_ramping: λ_stitch grows linearly from 0 (III-D); off: constant.
        pixel_weighting: weight the stitch loss by the pixel overlap map (III-F); off: W = M.
        lambda_stitch: final λ_stitch; None: 10 in 2D, 20 in 3D (paper IV-A, IV-C).
        ramp_end: fraction of the training steps at which the ramp reaches λ_stitch (paper
            III-D ramps "throughout the training": 1.0).
        lambda_d_sati: weight of ``L_D^SATI`` in the discriminator loss (Alg. 1 adds it
            unweighted: 1.0; 0.5 gives ``y_hat_z`` the weight of the host's own fake term).
        strip_source: where the merged strips come from. ``"crop"`` (paper Alg. 1): the
            crop's own translation ``ŷ_x``, which saw the strip's objects whole. ``"neighbour"``
            (beyond the paper): the translation of the crop's neighbour along each merged
            border, shifted by ``crop - overlap`` so the strip is its trailing edge, as the
            predecessor tile is at inference. It samples crops ``2 * crop - overlap`` wide and
            costs one no-grad generator pass per spatial dim and step. On the ``cpu-small``
            benchmark it did not lower the error (README, Benchmarks).
        lambda_consistency: final weight of the continuation term ``L_cons`` (beyond the
            paper): ``y_hat_z`` should reproduce ``y_hat_x`` (detached) outside the merged
            strips, which it can only do by reading the colours in the strip, since ``z`` hides
            the strip's X pixels. Ramped like ``λ_stitch``; 0 (default): the paper's loss.
        start: fraction of the training steps before the SATI terms (and the ramps) begin,
            in [0, 1); 0: from the first step (paper Alg. 1).
    """

    enabled: bool = True
    overlap: int | None = None
    overlap_sampling: bool = True
    domain_encoding: bool | None = None  # None -> enabled (__post_init__)
    loss_ramping: bool = True
    pixel_weighting: bool = True
    lambda_stitch: float | None = None
    ramp_end: float = 1.0
    lambda_d_sati: float = 1.0
    strip_source: str = "crop"
    lambda_consistency: float = 0.0
    start: float = 0.0

    def __post_init__(self) -> None:
        if self.domain_encoding is None:
            object.__setattr__(self, "domain_encoding", bool(self.enabled))
        if not 0.0 <= self.start < 1.0:
            raise ValueError(f"start must be a fraction of the steps in [0, 1), got {self.start!r}")
        if not self.lambda_consistency >= 0:
            raise ValueError(f"lambda_consistency must be >= 0, got {self.lambda_consistency!r}")
        if not 0.0 < self.ramp_end <= 1.0:
            raise ValueError(f"ramp_end must be in (0, 1], got {self.ramp_end!r}")
        if self.strip_source not in STRIP_SOURCES:
            raise ValueError(
                f"strip_source must be one of {', '.join(STRIP_SOURCES)}, got {self.strip_source!r}"
            )

    def sample_crop(self, crop: Sequence[int]) -> tuple[int, ...]:
        """Size of the X crops to sample for training crops ``crop``: ``crop`` itself, or
        with ``strip_source="neighbour"`` ``2 * crop - overlap`` (the crop is the trailing
        window, its neighbours are shifted by ``crop - overlap``)."""
        crop = tuple(int(c) for c in crop)
        if not (self.enabled and self.strip_source == "neighbour"):
            return crop
        overlap = int(self.resolve(crop).overlap or 0)
        return tuple(2 * c - overlap for c in crop)

    def resolve(self, crop: Sequence[int]) -> SATISettings:
        """Fill the ``None`` defaults for a crop size."""
        overlap = self.overlap if self.overlap is not None else max(1, min(crop) // 4)
        lam = self.lambda_stitch
        if lam is None:
            lam = 10.0 if len(crop) == 2 else 20.0  # paper IV-A (2D) / IV-C (3D)
        if not 0 < 2 * overlap < min(crop):
            raise ValueError(
                f"SATI overlap must be in 1..{(min(crop) - 1) // 2} (below half the crop) for "
                f"crop {tuple(crop)}, got {overlap}"
            )
        return replace(self, overlap=int(overlap), lambda_stitch=float(lam))


def default_crop(dims: int) -> int:
    """Training crop size: 256 px in 2D (paper IV-A), 64 px in 3D (paper IV-C)."""
    return 256 if dims == 2 else 64


def inference_defaults(crop: Sequence[int], sati: bool) -> dict[str, Any]:
    """Inference settings stored with a run.

    2D: tile = 2 x crop, overlap = 25 % of the tile (paper IV-A: 512 / 128 for 256 crops);
    3D: tile = crop, overlap 25 % (paper IV-C: 64 / 16). Runs without SATI default to the
    weighted strategy, SATI runs to ``sati``.
    """
    tile = [2 * c for c in crop] if len(crop) == 2 else list(crop)
    return {
        "strategy": "sati" if sati else "weighted",
        "tile": tile,
        "overlap": [t // 4 for t in tile],
    }


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None: CUDA if available, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class TrainConfig:
    """Settings of one training run (everything but the adapter's own options' values).

    Attributes:
        adapter: registry name.
        options: adapter hyperparameters (validated by the adapter's declared options).
        dims: spatial dims of the images.
        crop: training crop size (int or per dim); None: :func:`default_crop`.
        batch_size: crops per domain and step (per process in distributed training).
        steps: total optimizer steps (the learning-rate schedule spans them).
        seed: seeds weights, crops, the merger and the host's randomness.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        amp: mixed precision (float16 autocast + grad scaling); only on CUDA.
        compile: ``torch.compile`` the adapter's modules.
        log_every: JSONL log interval in steps.
        sample_every: write a sample PNG every N steps (0: never).
        checkpoint_every: write a checkpoint every N steps (0: only at the end).
        sati: the SATI switches.
    """

    adapter: str = "cyclegan"
    options: dict[str, Any] = field(default_factory=dict)
    dims: int = 2
    crop: int | tuple[int, ...] | None = None
    batch_size: int = 1
    steps: int = 1000
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    compile: bool = False
    log_every: int = 1
    sample_every: int = 0
    checkpoint_every: int = 0
    sati: SATISettings = field(default_factory=SATISettings)

    def crop_size(self) -> tuple[int, ...]:
        """The crop as one size per spatial dim."""
        crop = self.crop if self.crop is not None else default_crop(self.dims)
        sizes = (crop,) * self.dims if isinstance(crop, int) else tuple(crop)
        if len(sizes) != self.dims or any(int(s) < 4 for s in sizes):
            raise ValueError(f"crop must be >= 4 px in each of {self.dims} dims, got {crop!r}")
        return tuple(int(s) for s in sizes)


def seed_everything(seed: int) -> None:
    """Seed python and torch (all devices); numpy randomness uses explicit generators."""
    random.seed(seed)
    torch.manual_seed(seed)


def _set_requires_grad(optimizer: torch.optim.Optimizer, flag: bool) -> None:
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.requires_grad_(flag)


class SATITrainer:
    """Trains an adapter with (or without) SATI; see the module docstring.

    In a process group (``torchrun``, :mod:`satikit.distributed`) every rank starts from rank
    0's weights, draws the same global batch of ``batch_size * world_size`` crop positions and
    merger cases and keeps its own share, and averages gradients before each optimizer step;
    only rank 0 writes logs, samples and checkpoints. The host GAN's own randomness (noise,
    styles) is seeded per rank from ``(seed, rank, step)``.

    Args:
        adapter: the wrapped GAN, already on ``config.device``'s device.
        config: run settings; ``config.sati`` is resolved for the crop size.
        x_sampler / y_sampler: crop samplers of both domains (None: call :meth:`train_step`
            with your own batches).
        run_dir: where logs, samples and checkpoints go (None: nowhere).
    """

    def __init__(
        self,
        adapter: Adapter,
        config: TrainConfig,
        *,
        x_sampler: CropSampler | None = None,
        y_sampler: CropSampler | None = None,
        run_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.adapter = adapter
        self.config = config
        self.crop = config.crop_size()
        self.sati = config.sati.resolve(self.crop)
        self.device = resolve_device(config.device)
        self.x_sampler, self.y_sampler = x_sampler, y_sampler
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.data_dirs: tuple[list[str], list[str]] = ([], [])  # set by from_dirs, for resume
        self.step = 0
        self.dist = distributed.context()
        self.rng = np.random.default_rng(config.seed)
        self.merge_generator = torch.Generator().manual_seed(config.seed)
        self.optimizers = adapter.configure_optimizers(config.steps)
        self.amp = bool(config.amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self.lambda_stitch = self._schedule(self.sati.lambda_stitch)
        self.lambda_consistency = self._schedule(self.sati.lambda_consistency)
        self.last: dict[str, torch.Tensor] = {}
        self._started = time.perf_counter()
        if self.dist.distributed:
            adapter.load_state_dict(distributed.broadcast_state(adapter.state_dict()))
            self._seed_host()
        if config.compile:
            for module in getattr(adapter, "children", lambda: [])():
                module.compile()

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dirs(
        cls,
        config: TrainConfig,
        x_dirs: Sequence[str | os.PathLike[str]],
        y_dirs: Sequence[str | os.PathLike[str]],
        run_dir: str | os.PathLike[str] | None = None,
    ) -> SATITrainer:
        """Build samplers over the TIFFs in ``x_dirs`` / ``y_dirs``, then the adapter.

        Raises:
            ValueError: no images, mismatched channels with SATI on, bad options.
        """
        crop = config.crop_size()
        encoding = config.sati.domain_encoding
        x_crop = config.sati.sample_crop(crop)
        x_sampler = CropSampler(domain_images(x_dirs, "x"), x_crop, "x", encoding=encoding)
        y_sampler = CropSampler(domain_images(y_dirs, "y"), crop, "y", encoding=encoding)
        if config.sati.enabled and x_sampler.channels != y_sampler.channels:
            raise ValueError(
                f"SATI merges Y pixels into X tiles, so both need the same channels; X has "
                f"{x_sampler.channels}, Y has {y_sampler.channels} (convert X, e.g. grey -> RGB)"
            )
        seed_everything(config.seed)
        adapter = _create(config, x_sampler.channels, y_sampler.channels)
        adapter.to(resolve_device(config.device))
        trainer = cls(adapter, config, x_sampler=x_sampler, y_sampler=y_sampler, run_dir=run_dir)
        trainer.data_dirs = (
            [str(Path(d).resolve()) for d in x_dirs],
            [str(Path(d).resolve()) for d in y_dirs],
        )
        return trainer

    @classmethod
    def resume(
        cls,
        run_dir: str | os.PathLike[str],
        *,
        steps: int | None = None,
        device: str | None = None,
    ) -> SATITrainer:
        """Continue a run exactly where its last checkpoint left it (weights, optimizers,
        schedulers, RNG states, host state, step). ``steps`` may extend the run."""
        saved = load_config(run_dir)
        config = _config_from_dict(saved)
        if steps is not None:
            config.steps = int(steps)
        if device is not None:
            config.device = device
        trainer = cls.from_dirs(config, saved["data"]["x"], saved["data"]["y"], run_dir)
        restore_weights(trainer.adapter, run_dir, saved)
        trainer.load_state(load_train_state(run_dir, step=saved["training"]["step"]))
        return trainer

    def _seed_host(self) -> None:
        """Distributed: seed the global RNGs (the host's noise, styles) per rank and step."""
        seed_everything(distributed.rank_seed(self.config.seed, self.dist.rank, self.step))

    @property
    def sati_start_step(self) -> int:
        """First step with the SATI terms (``SATISettings.start`` of the run's steps)."""
        return round(self.sati.start * self.config.steps)

    def _schedule(self, final: float | None) -> Schedule:
        """λ(t) of a SATI term: 0 before :attr:`sati_start_step`, then constant or (loss
        ramping, paper III-D) linear up to ``final`` at ``ramp_end`` of the steps."""
        final, begin = float(final or 0.0), self.sati_start_step
        if not self.sati.loss_ramping:
            return constant(final)  # the terms are off before `begin` anyway
        end = max(begin + 1, round(self.sati.ramp_end * self.config.steps))
        return linear_ramp(final, begin, end)

    # -- one step (paper Alg. 1) ----------------------------------------------------------
    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """One generator and one discriminator update on a batch.

        Args:
            x: ``(B, C, *crop)`` encoded X on the trainer's device; with
                ``strip_source="neighbour"`` ``(B, C, *(2 * crop - overlap))``, whose trailing
                ``crop`` window is the crop (:meth:`SATISettings.sample_crop`).
            y: ``(B, C_y, *crop)`` encoded Y.

        Returns:
            detached loss terms: the host's (``adapter.loss_terms``), ``g_host``, ``d_host``,
            ``g_total``, ``d_total`` and with SATI ``adv_zy``, ``stitch``, ``d_sati``,
            ``lambda_stitch``.
        """
        a, opt = self.adapter, self.optimizers
        context, x = self._split_context(x)
        terms: dict[str, torch.Tensor] = {}
        _set_requires_grad(opt.discriminator, False)
        with self._autocast():
            loss_g, y_hat_x = a.generator_step(x, y)
            terms["g_host"] = loss_g.detach()
            y_hat_z = None
            if self.sati.enabled and self.step >= self.sati_start_step:
                strips = y_hat_x.detach()
                if context is not None:
                    strips = self._neighbour_strips(context, strips)
                z, mask, weight = merge(
                    x,
                    strips,
                    self.sati.overlap,
                    generator=self.merge_generator,
                    cases="all" if self.sati.overlap_sampling else "leading",
                    weighting=self.sati.pixel_weighting,
                    case_index=self._merge_cases(x.shape[0]),
                )
                y_hat_z = a.generator_xy(z)
                adv = sati_generator_adv(a.criterion, a.discriminator_y, y_hat_z)
                stitch = stitch_loss(y_hat_z.float(), z.float(), mask, weight.float())
                lam = self.lambda_stitch(self.step)
                loss_g = loss_g + adv + lam * stitch
                terms.update(
                    adv_zy=adv.detach(), stitch=stitch.detach(), lambda_stitch=torch.tensor(lam)
                )
                if self.sati.lambda_consistency > 0:
                    cons = consistency_loss(y_hat_z.float(), y_hat_x.detach().float(), mask)
                    lam_cons = self.lambda_consistency(self.step)
                    loss_g = loss_g + lam_cons * cons
                    terms.update(
                        consistency=cons.detach(), lambda_consistency=torch.tensor(lam_cons)
                    )
                self._sample = (x, y_hat_x.detach(), z, mask, y_hat_z.detach())
            else:
                self._sample = (x, y_hat_x.detach(), None, None, None)
        opt.generator.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self._average_gradients(opt.generator)
        self.scaler.step(opt.generator)
        _set_requires_grad(opt.discriminator, True)
        with self._autocast():
            loss_d = a.discriminator_step(x, y, y_hat_x.detach())
            terms["d_host"] = loss_d.detach()
            if y_hat_z is not None:
                d_sati = sati_discriminator_adv(a.criterion, a.discriminator_y, y_hat_z)
                loss_d = loss_d + self.sati.lambda_d_sati * d_sati
                terms["d_sati"] = d_sati.detach()
        opt.discriminator.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self._average_gradients(opt.discriminator)
        self.scaler.step(opt.discriminator)
        self.scaler.update()
        for scheduler in opt.schedulers:
            scheduler.step()
        self.step += 1
        terms.update(g_total=loss_g.detach(), d_total=loss_d.detach())
        self.last = {**{k: v for k, v in a.loss_terms.items()}, **terms}
        return self.last

    def _split_context(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(context, crop)``: with ``strip_source="neighbour"`` the sampled region and its
        trailing crop window; else ``(None, x)``."""
        expected = self.sati.sample_crop(self.crop)
        if expected == self.crop:
            return None, x
        if tuple(x.shape[2:]) != expected:
            raise ValueError(
                f"strip_source='neighbour' needs X batches of spatial size {expected} "
                f"(2 * crop - overlap), got {tuple(x.shape[2:])}"
            )
        shift = [e - c for e, c in zip(expected, self.crop)]
        return x, x[(slice(None), slice(None), *(slice(s, None) for s in shift))]

    @torch.no_grad()
    def _neighbour_strips(self, context: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        """``own`` with each leading strip replaced by the trailing strip of the neighbour's
        translation along that axis (no gradient, like ``ŷ_x.detach()``): ``(B, C_y, *crop)``.
        Where strips cross (corners), the last axis's neighbour wins."""
        overlap = int(self.sati.overlap or 0)
        shift = [s - c for s, c in zip(context.shape[2:], self.crop)]
        strips = own.clone()
        for axis in range(len(self.crop)):
            window = [slice(s, None) for s in shift]
            window[axis] = slice(0, self.crop[axis])  # the neighbour ends `overlap` into the crop
            neighbour = self.adapter.generator_xy(context[(slice(None), slice(None), *window)])
            inside = [slice(None)] * len(self.crop)
            inside[axis] = slice(0, overlap)
            trailing = [slice(None)] * len(self.crop)
            trailing[axis] = slice(self.crop[axis] - overlap, None)
            strips[(slice(None), slice(None), *inside)] = neighbour[
                (slice(None), slice(None), *trailing)
            ].to(strips.dtype)
        return strips

    def _merge_cases(self, batch_size: int) -> torch.Tensor | None:
        """This rank's share of the global batch's merger cases (None: no overlap sampling)."""
        if not self.sati.overlap_sampling:
            return None
        drawn = draw_cases(batch_size * self.dist.world_size, len(self.crop), self.merge_generator)
        return drawn[self.dist.shard(batch_size)]

    def _average_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        if self.dist.distributed:
            distributed.average_gradients(p for g in optimizer.param_groups for p in g["params"])

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Random crops of both domains, on the trainer's device.

        Distributed: the positions of the global batch are drawn on every rank, each reads its
        own ``batch_size`` crops (so N ranks see what one process with an N-fold batch sees).
        """
        if self.x_sampler is None or self.y_sampler is None:
            raise RuntimeError("this trainer has no crop samplers; pass batches to train_step")
        size, keep = self.config.batch_size, self.dist.shard(self.config.batch_size)
        x = self.x_sampler.sample(size * self.dist.world_size, self.rng, keep=keep)
        y = self.y_sampler.sample(size * self.dist.world_size, self.rng, keep=keep)
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    # -- the loop -------------------------------------------------------------------------
    def fit(self, *, progress: bool = True) -> dict[str, float]:
        """Train until ``config.steps``; log, sample and checkpoint on the way.

        Distributed: logged losses are the means over all ranks; only rank 0 writes files and
        shows the progress bar.

        Returns:
            the last step's loss terms as floats.
        """
        self.adapter.train(True)
        losses: dict[str, float] = {}
        if self.step == 0 and self.run_dir is not None and self.dist.is_main:
            _truncate_log(self.run_dir / LOG_NAME, 0)  # lines of a run killed before its checkpoint
        with tqdm(
            total=self.config.steps,
            initial=self.step,
            disable=not (progress and self.dist.is_main),
            desc="train[sati]" if self.sati.enabled else "train[standard]",
            unit="step",
            dynamic_ncols=True,
        ) as bar:
            while self.step < self.config.steps:
                terms = self.train_step(*self.next_batch())
                if self.step % self.config.log_every == 0 or self.step == self.config.steps:
                    if self.dist.distributed:
                        terms = distributed.mean_terms(terms, self.device)
                    losses = {key: float(value) for key, value in terms.items()}
                    self._log(losses)
                    bar.set_postfix(
                        {
                            k: f"{losses[k]:.3g}"
                            for k in ("g_total", "d_total", "stitch")
                            if k in losses
                        }
                    )
                if self.config.sample_every and self.step % self.config.sample_every == 0:
                    self.write_sample()
                if self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
                    self.save()
                bar.update(1)
        self.save()
        return losses

    def _log(self, losses: Mapping[str, float]) -> None:
        if self.run_dir is None or not self.dist.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        lr = self.optimizers.generator.param_groups[0]["lr"]
        record = {
            "step": self.step,
            "elapsed_s": round(time.perf_counter() - self._started, 3),
            "lr": lr,
            **losses,
        }
        with open(self.run_dir / LOG_NAME, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def write_sample(self) -> Path | None:
        """Write ``samples/step_NNNNNNN.png``: x | ŷ_x | z | ŷ_z of the first crop of the
        latest batch (3D: the middle slice)."""
        if self.run_dir is None or not self.dist.is_main or not getattr(self, "_sample", None):
            return None
        from PIL import Image

        enc = self.sati.domain_encoding
        x, y_hat_x, z, mask, y_hat_z = (
            None if t is None else t[0].detach().float().cpu() for t in self._sample
        )
        panels = [decode(x.numpy(), "x", enabled=enc), decode(y_hat_x.numpy(), "y", enabled=enc)]
        if z is not None:
            merged = np.where(
                mask.numpy(),
                decode(z.numpy(), "y", enabled=enc),
                decode(z.numpy(), "x", enabled=enc),
            )
            panels += [merged, decode(y_hat_z.numpy(), "y", enabled=enc)]
        images = [_displayable(p) for p in panels]
        path = self.run_dir / SAMPLES_DIR / f"step_{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            Image.fromarray(np.concatenate(images, axis=1)).save(tmp, format="PNG")
        return path

    # -- checkpoints ----------------------------------------------------------------------
    def run_config(self) -> dict[str, Any]:
        """The JSON config stored with every checkpoint (see :mod:`satikit.checkpoint`)."""
        c = self.config
        info = get_adapter_info(c.adapter)
        x_dirs, y_dirs = self.data_dirs
        in_channels = self.x_sampler.channels if self.x_sampler else None
        out_channels = self.y_sampler.channels if self.y_sampler else None
        return {
            "format": FORMAT,
            "satikit_version": __version__,
            "adapter": {
                "name": c.adapter,
                "plugin": info.plugin,
                "plugin_version": info.version,
                "options": dict(self.adapter.options),
            },
            "data": {
                "dims": c.dims,
                "in_channels": in_channels,
                "out_channels": out_channels,
                "x": x_dirs,
                "y": y_dirs,
                "output_dtype": str(self.y_sampler.dtype) if self.y_sampler else "uint8",
            },
            "encoding": {"domain_encoding": self.sati.domain_encoding},
            "sati": asdict(self.sati),
            "training": {
                "step": self.step,
                "steps": c.steps,
                "crop": list(self.crop),
                "batch_size": c.batch_size,
                "seed": c.seed,
                "world_size": self.dist.world_size,
                "amp": c.amp,
                "compile": c.compile,
                "log_every": c.log_every,
                "sample_every": c.sample_every,
                "checkpoint_every": c.checkpoint_every,
            },
            "inference": inference_defaults(self.crop, self.sati.enabled),
        }

    def state(self) -> dict[str, Any]:
        """Everything an exact resume needs besides the weights."""
        opt = self.optimizers
        rng = {
            "torch": torch.get_rng_state(),
            "numpy": self.rng.bit_generator.state,
            "merge": self.merge_generator.get_state(),
            "python": random.getstate(),
        }
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "step": self.step,
            "optimizers": {
                "generator": opt.generator.state_dict(),
                "discriminator": opt.discriminator.state_dict(),
            },
            "schedulers": [s.state_dict() for s in opt.schedulers],
            "scaler": self.scaler.state_dict() if self.amp else {},
            "rng": rng,
            "host": self.adapter.training_state(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state` (after the weights are loaded)."""
        opt = self.optimizers
        opt.generator.load_state_dict(state["optimizers"]["generator"])
        opt.discriminator.load_state_dict(state["optimizers"]["discriminator"])
        for scheduler, saved in zip(opt.schedulers, state["schedulers"]):
            scheduler.load_state_dict(saved)
        if self.amp and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        self.rng.bit_generator.state = rng["numpy"]
        self.merge_generator.set_state(rng["merge"])
        random.setstate(rng["python"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(list(rng["cuda"]))
        self.adapter.load_training_state(state["host"])
        self.step = int(state["step"])
        if self.dist.distributed:
            self._seed_host()
        if self.run_dir is not None and self.dist.is_main:
            _truncate_log(self.run_dir / LOG_NAME, self.step)

    def save(self) -> Path | None:
        """Write weights, resume state and config to ``run_dir`` as one atomic checkpoint
        (:func:`satikit.checkpoint.save_checkpoint`); distributed: rank 0 only."""
        if self.run_dir is None or not self.dist.is_main:
            return None
        return save_checkpoint(self.run_dir, self.adapter, self.run_config(), self.state())


def domain_images(dirs: Sequence[str | os.PathLike[str]], domain: str) -> list[Path]:
    """The TIFFs of one domain: each entry is a file or a folder of TIFFs.

    Raises:
        ValueError: no image found, naming the domain and the folders.
    """
    paths: list[Path] = []
    for directory in dirs:
        path = Path(directory)
        paths += [path] if path.is_file() else list_images(path)
    if not paths:
        raise ValueError(f"no TIFF images for domain {domain} in {[str(d) for d in dirs]}")
    return paths


def _create(config: TrainConfig, in_channels: int, out_channels: int) -> Adapter:
    from satikit.plugins import create_adapter

    return create_adapter(
        config.adapter,
        dims=config.dims,
        in_channels=in_channels,
        out_channels=out_channels,
        domain_encoding=config.sati.domain_encoding,
        **config.options,
    )


def _config_from_dict(saved: Mapping[str, Any]) -> TrainConfig:
    t = saved["training"]
    return TrainConfig(
        adapter=saved["adapter"]["name"],
        options=dict(saved["adapter"]["options"]),
        dims=int(saved["data"]["dims"]),
        crop=tuple(t["crop"]),
        batch_size=int(t["batch_size"]),
        steps=int(t["steps"]),
        seed=int(t["seed"]),
        amp=bool(t["amp"]),
        compile=bool(t["compile"]),
        log_every=int(t["log_every"]),
        sample_every=int(t["sample_every"]),
        checkpoint_every=int(t["checkpoint_every"]),
        sati=SATISettings(**saved["sati"]),
    )


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after ``step`` by an interrupted run (so a resumed log is exact),
    and a last line cut short by a kill."""
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8")
    kept = "".join(line + "\n" for line in text.splitlines() if _log_step(line) <= step)
    if kept != text:
        with atomic_path(path) as tmp:
            tmp.write_text(kept, encoding="utf-8")


def _log_step(line: str) -> float:
    """The step of a log line; infinity for a blank or broken one (so it is dropped)."""
    try:
        return float(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return float("inf")


def _displayable(image: np.ndarray) -> np.ndarray:
    """``(C, *spatial)`` uint8 -> ``(H, W[, 3])`` for a PNG (3D: the middle slice)."""
    while image.ndim > 3:
        image = image[:, image.shape[1] // 2]
    if image.shape[0] == 3:
        return np.moveaxis(image, 0, -1)
    return np.repeat(image[:1], 3, axis=0).transpose(1, 2, 0)
