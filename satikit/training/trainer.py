"""The SATI trainer: an adapter's own training step plus the SATI hooks (paper Alg. 1), with
logs, samples, checkpoints, exact resume, distributed data parallelism and callbacks."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from satikit import __version__
from satikit.checkpoint import (
    RunConfig,
    load_config,
    load_train_state,
    restore_weights,
    save_checkpoint,
)
from satikit.devices import context, environment, resolve_device
from satikit.io.images import list_images
from satikit.plugins import get_adapter_info
from satikit.protocols import Adapter
from satikit.training import distributed
from satikit.training.batch_norm import recalibrate
from satikit.training.callbacks import Callback
from satikit.training.crops import CropSampler
from satikit.training.ema import EMA_DIR, GeneratorEMA
from satikit.training.hooks import Sample, SATIHooks
from satikit.training.logs import LOG_NAME, SAMPLES_DIR, append_log, truncate_log, write_sample
from satikit.training.state import restore_state, trainer_state

__all__ = ["SATITrainer", "domain_images", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed python and torch (all devices); numpy randomness uses explicit generators."""
    random.seed(seed)
    torch.manual_seed(seed)


#: ``config.json`` section listing what a run was trained on (:func:`satikit.devices.environment`)
TRAINED_ON = "trained_on"


def _record_environment(config: RunConfig, device: torch.device) -> RunConfig:
    """``config`` with this machine added to its ``trained_on`` list unless it is there
    already (a run resumed elsewhere lists each machine that trained it once, in order)."""
    seen = list(config.extra.get(TRAINED_ON, []))
    here = environment(device)
    if here in seen:
        return config
    return replace(config, extra={**config.extra, TRAINED_ON: [*seen, here]})


def _set_requires_grad(optimizer: torch.optim.Optimizer, flag: bool) -> None:
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.requires_grad_(flag)


class SATITrainer:
    """Trains an adapter with (or without) SATI; see :mod:`satikit.training`.

    In a process group (``torchrun``, :mod:`satikit.training.distributed`) every rank starts from
    rank 0's weights, draws the same global batch of ``batch_size * world_size`` crop positions and
    merger cases and keeps its own share, and averages gradients before each optimizer step;
    only rank 0 writes logs, samples and checkpoints. The host GAN's own randomness (noise,
    styles) is seeded per rank from ``(seed, rank, step)``.

    Args:
        adapter: the wrapped GAN, already on ``device``.
        config: the run's config; its derived fields (crop, SATI overlap and λ, inference
            defaults, channels) are resolved here (:attr:`config`).
        x_sampler / y_sampler: crop samplers of both domains (None: call :meth:`train_step`
            with your own batches).
        run_dir: where logs, samples and checkpoints go (None: nowhere).
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda:1"``, ...
        callbacks: called after each step and checkpoint (:class:`Callback`).
    """

    def __init__(
        self,
        adapter: Adapter,
        config: RunConfig,
        *,
        x_sampler: CropSampler | None = None,
        y_sampler: CropSampler | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = "auto",
        callbacks: Iterable[Callback] = (),
    ) -> None:
        self.adapter = adapter
        self.dist = context()
        self.x_sampler, self.y_sampler = x_sampler, y_sampler
        self.config = config.resolved(
            options=config.adapter.options,
            plugin=config.adapter.plugin,
            plugin_version=config.adapter.plugin_version,
            channels=(
                x_sampler.channels if x_sampler else None,
                y_sampler.channels if y_sampler else None,
            ),
            output_dtype=str(y_sampler.dtype) if y_sampler else "uint8",
            input_dtype=str(x_sampler.dtype) if x_sampler else None,
            world_size=self.dist.world_size,
            version=__version__,
        )
        training = self.config.training
        self.crop, self.sati = self.config.crop, self.config.sati
        self.device = resolve_device(device)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.callbacks: list[Callback] = list(callbacks)
        self.step = 0
        self._start_step = 0  # where this process began: a machine is recorded once it trains
        self.rng = np.random.default_rng(training.seed)
        self.hooks = SATIHooks(self.sati, self.crop, training.steps, training.seed)
        self.optimizers = adapter.configure_optimizers(training.steps)
        self.ema = GeneratorEMA(adapter.generator_xy, training.ema) if training.ema else None
        self.amp = bool(training.amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self.last: dict[str, torch.Tensor] = {}
        self._sample: Sample | None = None
        self._started = time.perf_counter()
        if self.dist.distributed:
            adapter.load_state_dict(distributed.broadcast_state(adapter.state_dict()))
            self._seed_host()
        if training.compile:
            for module in getattr(adapter, "children", lambda: [])():
                module.compile()

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dirs(
        cls,
        config: RunConfig,
        x_dirs: Sequence[str | os.PathLike[str]],
        y_dirs: Sequence[str | os.PathLike[str]],
        run_dir: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = "auto",
        callbacks: Iterable[Callback] = (),
    ) -> SATITrainer:
        """Build samplers over the TIFFs in ``x_dirs`` / ``y_dirs``, then the adapter
        (seeded with the run's seed).

        Raises:
            ValueError: no images, mismatched channels with SATI on, bad options.
        """
        crop = config.crop
        encoding = config.sati.domain_encoding
        x_crop = config.sati.sample_crop(crop)
        x_sampler = CropSampler(domain_images(x_dirs, "x"), x_crop, "x", encoding=encoding)
        y_sampler = CropSampler(domain_images(y_dirs, "y"), crop, "y", encoding=encoding)
        if config.sati.enabled and x_sampler.channels != y_sampler.channels:
            raise ValueError(
                f"SATI merges Y pixels into X tiles, so both need the same channels; X has "
                f"{x_sampler.channels}, Y has {y_sampler.channels} (convert X, e.g. grey -> RGB)"
            )
        seed_everything(config.training.seed)
        adapter = _create(config, x_sampler.channels, y_sampler.channels)
        adapter.to(resolve_device(device))
        dirs = {
            key: tuple(str(Path(d).resolve()) for d in ds)
            for key, ds in (("x", x_dirs), ("y", y_dirs))
        }
        config = replace(config, data=replace(config.data, **dirs))
        return cls(
            adapter,
            config,
            x_sampler=x_sampler,
            y_sampler=y_sampler,
            run_dir=run_dir,
            device=device,
            callbacks=callbacks,
        )

    @classmethod
    def resume(
        cls,
        run_dir: str | os.PathLike[str],
        *,
        steps: int | None = None,
        device: str | None = None,
        callbacks: Iterable[Callback] = (),
    ) -> SATITrainer:
        """Continue a run exactly where its last checkpoint left it (weights, optimizers,
        schedulers, RNG states, host state, step). ``steps`` may extend the run."""
        saved = load_config(run_dir)
        config = saved if steps is None else saved.with_training(steps=int(steps))
        trainer = cls.from_dirs(
            config,
            saved.data.x or (),
            saved.data.y or (),
            run_dir,
            device=device or "auto",
            callbacks=callbacks,
        )
        restore_weights(trainer.adapter, run_dir, saved)
        trainer.load_state(load_train_state(run_dir, step=saved.training.step))
        return trainer

    def _seed_host(self) -> None:
        """Distributed: seed the global RNGs (the host's noise, styles) per rank and step."""
        seed = self.config.training.seed
        seed_everything(distributed.rank_seed(seed, self.dist.rank, self.step))

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
        context, x = self.hooks.split_context(x)
        terms: dict[str, torch.Tensor] = {}
        _set_requires_grad(opt.discriminator, False)
        with self._autocast():
            loss_g, y_hat_x = a.generator_step(x, y)
            terms["g_host"] = loss_g.detach()
            sati = self.hooks.generator_loss(a, self.step, (x, context), y_hat_x, loss_g, self.dist)
            terms.update(sati.terms)
            self._sample = sati.sample
        self._update(opt.generator, sati.loss)
        if self.ema is not None:
            self.ema.update()
        _set_requires_grad(opt.discriminator, True)
        with self._autocast():
            loss_d = a.discriminator_step(x, y, y_hat_x.detach())
            terms["d_host"] = loss_d.detach()
            loss_d = self.hooks.discriminator_loss(a, sati.y_hat_z, loss_d, terms)
        self._update(opt.discriminator, loss_d)
        self.scaler.update()
        for scheduler in opt.schedulers:
            scheduler.step()
        self.step += 1
        terms.update(g_total=sati.loss.detach(), d_total=loss_d.detach())
        self.last = {**{k: v for k, v in a.loss_terms.items()}, **terms}
        return self.last

    def _update(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """Zero the grads, backpropagate (scaled), average over ranks, one optimizer step."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.dist.distributed:
            distributed.average_gradients(p for g in optimizer.param_groups for p in g["params"])
        self.scaler.step(optimizer)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Random crops of both domains, on the trainer's device.

        Distributed: the positions of the global batch are drawn on every rank, each reads its
        own ``batch_size`` crops (so N ranks see what one process with an N-fold batch sees).
        """
        if self.x_sampler is None or self.y_sampler is None:
            raise RuntimeError("this trainer has no crop samplers; pass batches to train_step")
        size = self.config.training.batch_size
        keep = self.dist.shard(size)
        x = self.x_sampler.sample(size * self.dist.world_size, self.rng, keep=keep)
        y = self.y_sampler.sample(size * self.dist.world_size, self.rng, keep=keep)
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    # -- the loop -------------------------------------------------------------------------
    def fit(self, *, progress: bool = True) -> dict[str, float]:
        """Train until ``config.training.steps``; log, sample and checkpoint on the way, and
        call the callbacks.

        Distributed: logged losses are the means over all ranks; only rank 0 writes files and
        shows the progress bar.

        Returns:
            the last logged step's loss terms as floats.
        """
        self.adapter.train(True)
        training = self.config.training
        losses: dict[str, float] = {}
        if self.step == 0 and self.run_dir is not None and self.dist.is_main:
            truncate_log(self.run_dir / LOG_NAME, 0)  # lines of a run killed before its checkpoint
        with tqdm(
            total=training.steps,
            initial=self.step,
            disable=not (progress and self.dist.is_main),
            desc="train[sati]" if self.sati.enabled else "train[standard]",
            unit="step",
            dynamic_ncols=True,
        ) as bar:
            while self.step < training.steps:
                terms = self.train_step(*self.next_batch())
                if self.step % training.log_every == 0 or self.step == training.steps:
                    losses = self._log(terms)
                    shown = [k for k in ("g_total", "d_total", "stitch") if k in losses]
                    bar.set_postfix({k: f"{losses[k]:.3g}" for k in shown})
                if training.sample_every and self.step % training.sample_every == 0:
                    self.write_sample()
                if training.checkpoint_every and self.step % training.checkpoint_every == 0:
                    self.save()
                for callback in self.callbacks:
                    callback.on_step(self, terms)
                bar.update(1)
        self.save()
        return losses

    def _log(self, terms: dict[str, torch.Tensor]) -> dict[str, float]:
        """One JSON log line of the step's terms (the means over ranks when distributed)."""
        if self.dist.distributed:
            terms = distributed.mean_terms(terms, self.device)
        losses = {key: float(value) for key, value in terms.items()}
        if self.run_dir is not None and self.dist.is_main:
            lr = self.optimizers.generator.param_groups[0]["lr"]
            elapsed = round(time.perf_counter() - self._started, 3)
            append_log(self.run_dir, {"step": self.step, "elapsed_s": elapsed, "lr": lr, **losses})
        return losses

    def write_sample(self) -> Path | None:
        """Write ``samples/step_NNNNNNN.png``: x | ŷ_x | z | ŷ_z of the first crop of the
        latest batch (3D: the middle slice)."""
        if self.run_dir is None or not self.dist.is_main or not self._sample:
            return None
        path = self.run_dir / SAMPLES_DIR / f"step_{self.step:07d}.png"
        return write_sample(path, self._sample, encoding=bool(self.sati.domain_encoding))

    # -- checkpoints ----------------------------------------------------------------------
    def run_config(self) -> RunConfig:
        """The config stored with every checkpoint: the resolved :attr:`config` at the current
        step, with the adapter's options and plugin."""
        info = get_adapter_info(self.config.adapter.name)
        adapter = replace(
            self.config.adapter,
            options=dict(self.adapter.options),  # type: ignore[attr-defined]
            plugin=info.plugin,
            plugin_version=info.version,
        )
        config = replace(self.config.with_training(step=self.step), adapter=adapter)
        if self.step > self._start_step:  # this machine trained some of the steps
            config = _record_environment(config, self.device)
        return config

    def state(self) -> dict[str, Any]:
        """Everything an exact resume needs besides the weights
        (:func:`satikit.training.state.trainer_state`)."""
        return trainer_state(self)

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state` (after the weights are loaded)."""
        restore_state(self, state)
        self._start_step = self.step
        if self.dist.distributed:
            self._seed_host()
        if self.run_dir is not None and self.dist.is_main:
            truncate_log(self.run_dir / LOG_NAME, self.step)

    def recalibrate_batch_norm(self, *, only_xy: bool = False) -> None:
        """Recompute the BatchNorm running statistics of ``generator_xy`` (and ``generator_yx``)
        over ``training.bn_recalibration`` batches of their source domain's training crops
        (:func:`satikit.training.batch_norm.recalibrate`); nothing for generators without
        BatchNorm, or without a crop sampler of their source domain. The crops come from a generator of their own
        (seeded by the seed and step), so training draws what it would without this."""
        batches = self.config.training.bn_recalibration
        if not batches:
            return
        rng = np.random.default_rng((self.config.training.seed, self.step))
        size = self.config.training.batch_size

        def crops(sampler: CropSampler, source: bool) -> Iterator[torch.Tensor]:
            for _ in range(batches):
                crop = sampler.sample(size, rng).to(self.device)
                yield self.hooks.split_context(crop)[1] if source else crop

        pairs = [(self.adapter.generator_xy, self.x_sampler, True)]
        if not only_xy:
            pairs.append((getattr(self.adapter, "generator_yx", None), self.y_sampler, False))
        for generator, sampler, source in pairs:
            if generator is not None and sampler is not None:
                recalibrate(generator, crops(sampler, source))

    def save(self) -> Path | None:
        """Write weights, resume state and config to ``run_dir`` as one atomic checkpoint
        (:func:`satikit.checkpoint.save_checkpoint`), with an EMA the averaged weights as the
        run ``run_dir/ema`` (no resume state: the average is in the run's), then call the
        callbacks' ``on_checkpoint``; distributed: rank 0 only."""
        if self.run_dir is None or not self.dist.is_main:
            return None
        config = self.run_config()
        self.recalibrate_batch_norm()
        path = save_checkpoint(self.run_dir, self.adapter, config, self.state())
        if self.ema is not None:
            with self.ema.swapped_in():
                self.recalibrate_batch_norm(only_xy=True)
                save_checkpoint(self.run_dir / EMA_DIR, self.adapter, config)
        for callback in self.callbacks:
            callback.on_checkpoint(self, path)
        return path


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


def _create(config: RunConfig, in_channels: int, out_channels: int) -> Adapter:
    from satikit.plugins import create_adapter

    return create_adapter(
        config.adapter.name,
        dims=config.data.dims,
        in_channels=in_channels,
        out_channels=out_channels,
        domain_encoding=config.sati.domain_encoding,
        **config.adapter.options,
    )
