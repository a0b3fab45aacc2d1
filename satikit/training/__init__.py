"""The SATI trainer: any adapter's own training step plus the SATI hooks (paper Alg. 1).

Per step, on a batch of random crops ``x`` (domain X) and ``y`` (domain Y):

1. ``loss_host, ŷ_x = adapter.generator_step(x, y)`` (the host's losses; ``ŷ_x`` reused);
2. ``z, M, W = merge(x, ŷ_x.detach(), overlap)`` (target treated as a constant; with
   ``strip_source="neighbour"``, beyond the paper, the strips come from the neighbours'
   translations instead);
3. ``ŷ_z = G_XY(z)``;
4. ``loss_G = loss_host + L_adv^ZY + λ_stitch(t) · L_stitch`` (paper eq. 3), plus, beyond
   the paper and off by default, ``λ_cons(t) · L_cons``
   (:func:`satikit.training.losses.consistency_loss`); one generator optimizer step;
5. ``loss_D = host discriminator loss + crit(D_Y(ŷ_z.detach()), fake)``, one discriminator
   optimizer step; then the host's schedulers step.

With ``SATISettings(enabled=False)`` only the host steps run, so baselines share this code.
Every adaptation of the paper is a switch: overlap sampling (III-B), domain encoding (III-C),
loss ramping (III-D), pixel overlap weighting (III-F); the stitching strategy (III-E) is an
inference switch (:mod:`satikit.translation`). ``SATISettings.start`` delays the SATI terms to
a fraction of the run (the authors' code has such a start-epoch switch; the paper starts at 0).
``SATISettings.statistics_context`` (beyond the paper, off by default) translates ``z`` with the
normalisation statistics of a wider region around the crop
(:mod:`~satikit.training.shared_statistics`), as tiling with shared statistics does at inference.

Modules: :mod:`~satikit.training.trainer` (the loop), :mod:`~satikit.training.hooks` (the SATI
terms), :mod:`~satikit.training.sati_merge` (``z, M, W`` from ``x`` and ``ŷ_x``, III-A/B),
:mod:`~satikit.training.losses` (the SATI losses and λ schedules), :mod:`~satikit.training.crops`
(the random crops of the training images), :mod:`~satikit.training.optim` (Adam with linear
decay, for adapters), :mod:`~satikit.training.distributed` (data-parallel training under
``torchrun``), :mod:`~satikit.training.state` (exact resume), :mod:`~satikit.training.logs` (log
and samples), :mod:`~satikit.training.callbacks` (code run after steps and checkpoints),
:mod:`~satikit.training.ema` (an average of the generator's weights, ``TrainingSettings.ema``),
:mod:`~satikit.training.shared_statistics` (a wider region's normalisation statistics).
"""

from __future__ import annotations

from satikit.training.callbacks import Callback, Snapshots
from satikit.training.ema import EMA_DIR, GeneratorEMA
from satikit.training.hooks import SATIHooks
from satikit.training.logs import LOG_NAME
from satikit.training.trainer import SATITrainer, domain_images, seed_everything

__all__ = [
    "EMA_DIR",
    "LOG_NAME",
    "Callback",
    "GeneratorEMA",
    "SATIHooks",
    "SATITrainer",
    "Snapshots",
    "domain_images",
    "seed_everything",
]
