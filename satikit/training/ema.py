"""An exponential moving average (EMA) of the generator's weights.

GAN generators oscillate from step to step, so the weights a run happens to stop at are one
draw from that oscillation; an average over the last few hundred steps is a steadier model
(Karras et al., "Progressive growing of GANs", ICLR 2018; Yazıcı et al., "The unusual
effectiveness of averaging in GAN training", ICLR 2019). The trainer keeps one for
``generator_xy`` when ``TrainingSettings.ema`` is set and writes it beside the run as
``RUN/ema/``, a run folder of its own (``satikit translate RUN/ema ...``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch

__all__ = ["EMA_DIR", "GeneratorEMA"]

#: The sub-folder of a run that holds the averaged weights as a run of their own.
EMA_DIR = "ema"


class GeneratorEMA:
    """Running average of a module's floating-point state (parameters and buffers).

    After update ``t`` (1-based) the average moves towards the module's weights with weight
    ``1 - d_t``, ``d_t = min(decay, (1 + t) / (10 + t))``: the early updates forget the
    starting weights fast (TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``), then
    the average spans about ``1 / (1 - decay)`` steps. The average starts from the module's
    weights at the first update, so weights loaded after construction (``--init``) count.

    Args:
        module: the module to average (the trainer's ``adapter.generator_xy``).
        decay: in [0, 1); e.g. 0.995 averages over about the last 200 steps.
    """

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.module, self.decay = module, float(decay)
        self.updates = 0
        self.average: dict[str, torch.Tensor] | None = None

    def _tracked(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.module.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self) -> None:
        """Fold the module's current weights into the average (after an optimizer step)."""
        current = self._tracked()
        self.updates += 1
        if self.average is None:
            self.average = {k: v.detach().clone() for k, v in current.items()}
            return
        keep = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for key, value in current.items():
            self.average[key].lerp_(value.detach().to(self.average[key].dtype), 1.0 - keep)

    def state(self) -> dict[str, object]:
        """What an exact resume needs: the update count and the average (tensors)."""
        return {"updates": self.updates, "average": dict(self.average or {})}

    def load_state(self, state: Mapping[str, object]) -> None:
        """Restore :meth:`state`."""
        self.updates = int(state["updates"])  # type: ignore[arg-type]
        average = dict(state["average"])  # type: ignore[call-overload]
        devices = {k: v.device for k, v in self._tracked().items()}
        self.average = {k: v.to(devices[k], copy=True) for k, v in average.items()} or None

    @contextmanager
    def swapped_in(self) -> Iterator[torch.nn.Module]:
        """Temporarily load the average into the module (e.g. to save or evaluate it); the
        module's own weights are put back afterwards, even on an error."""
        if self.average is None:
            yield self.module
            return
        own = {k: v.detach().clone() for k, v in self._tracked().items()}
        self.module.load_state_dict(self.average, strict=False)
        try:
            yield self.module
        finally:
            self.module.load_state_dict(own, strict=False)
