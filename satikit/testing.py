"""Adapter conformance kit: what a GAN adapter must do for SATI to wrap it.

A third-party plugin calls it from its own tests::

    from satikit.testing import assert_adapter_conforms

    def test_mygan_conforms():
        assert_adapter_conforms("mygan")          # registered name: uses its test_options
        assert_adapter_conforms("mygan", dims=3)

or with a factory that is not (yet) registered:
``assert_adapter_conforms(build_mygan, options={"width": 4})``. ``satikit check-adapter NAME``
runs the same checks from the command line.

Checks (:data:`CHECKS`), each on a tiny batch of random encoded data, CPU by default:

* ``build``: the factory returns a :class:`satikit.protocols.Adapter` with the requested
  ``dims`` and JSON-serialisable ``options``;
* ``generator_xy``: ``(B, C_x, *S) -> (B, C_y, *S)``, finite, inside Y's encoded range;
* ``translate``: the same without graph, repeatable for a fixed seed, each tile independent of
  the others in its batch;
* ``discriminator``: ``criterion(discriminator_y(y), real)`` is a finite scalar;
* ``host_step``: ``generator_step`` returns a finite scalar loss and ``ŷ_x`` with graph into
  ``generator_xy``; ``discriminator_step`` a finite scalar with graph into ``discriminator_y``;
* ``sati_step``: one :meth:`satikit.training.SATITrainer.train_step` with SATI gives finite
  losses and moves the weights of ``generator_xy`` and ``discriminator_y``;
* ``state_dict``: weights survive a safetensors round trip into a differently seeded adapter
  (same translations), and ``training_state`` round-trips;
* ``determinism``: the same seed builds the same weights, and the same SATI step gives the same
  losses and weights;
* ``tiling[simple|weighted|sati]``: tile-wise translation of an image larger than a tile with
  :func:`satikit.stitching.stitch`; the first tile's own region equals ``translate`` of it.
* ``shared_statistics``: weighted tiling with whole-image statistics (``norm="thumbnail"``)
  runs, i.e. the engine reaches every normalisation of ``generator_xy`` whose statistics depend
  on the tile (instance norms, :class:`~satikit.protocols.NormWithStatistics` layers); one it
  cannot reach (e.g. a functional ``instance_norm`` call) fails, naming its module. Skipped
  for a generator without such normalisations.

SATI checks are skipped (not failed) when X and Y have different channel counts, which SATI
cannot merge.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from satikit.choices import STRATEGIES
from satikit.encoding import domain_range
from satikit.protocols import Adapter, AdapterInfo

__all__ = [
    "CHECKS",
    "CheckResult",
    "ConformanceError",
    "ConformanceReport",
    "assert_adapter_conforms",
    "check_adapter",
    "default_size",
    "registered_cases",
]

TILING_STRATEGIES = tuple(s for s in STRATEGIES if s != "none")
CHECKS: tuple[str, ...] = (
    "build",
    "generator_xy",
    "translate",
    "discriminator",
    "host_step",
    "sati_step",
    "state_dict",
    "determinism",
    *(f"tiling[{s}]" for s in TILING_STRATEGIES),
    "shared_statistics",
)
Status = Literal["pass", "fail", "skip"]
_TOLERANCE = 1e-4


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check: ``status`` is ``"pass"``, ``"fail"`` or ``"skip"``."""

    name: str
    status: Status
    detail: str = ""

    @property
    def passed(self) -> bool:
        """True unless the check failed (a skipped check does not fail the report)."""
        return self.status != "fail"

    def line(self) -> str:
        """``"PASS  name  detail"``: one line for a terminal."""
        return f"{self.status.upper():<5} {self.name:<18} {self.detail}".rstrip()


@dataclass
class ConformanceReport:
    """All check results of one adapter configuration.

    Attributes:
        adapter: adapter name (or the factory's name).
        dims: spatial dims checked.
        size: crop / tile size in px.
        options: the options the adapter was built with.
        results: one :class:`CheckResult` per check, in :data:`CHECKS` order.
    """

    adapter: str
    dims: int
    size: int
    options: dict[str, Any] = field(default_factory=dict)
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check failed."""
        return all(result.passed for result in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        """The failed checks."""
        return [result for result in self.results if not result.passed]

    def counts(self) -> dict[str, int]:
        """Number of passed, failed and skipped checks."""
        return {
            status: sum(r.status == status for r in self.results)
            for status in ("pass", "fail", "skip")
        }

    def __str__(self) -> str:
        head = f"{self.adapter} {self.dims}D (size {self.size})"
        c = self.counts()
        tail = f"{c['pass']} passed, {c['fail']} failed, {c['skip']} skipped"
        return "\n".join([head, *("  " + r.line() for r in self.results), "  " + tail])

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (``satikit check-adapter --json``)."""
        return {
            "adapter": self.adapter,
            "dims": self.dims,
            "size": self.size,
            "ok": self.ok,
            "options": self.options,
            "results": [
                {"name": r.name, "status": r.status, "detail": r.detail} for r in self.results
            ],
        }


class ConformanceError(AssertionError):
    """Raised by :func:`assert_adapter_conforms`; the message is the full report."""


class _Skip(Exception):
    """A check that does not apply to this configuration."""


def default_size(dims: int) -> int:
    """Crop / tile size of the checks: 32 px in 2D, 16 px in 3D (and 64 px in 1D)."""
    return {1: 64, 2: 32}.get(dims, 16)


def registered_cases(filter: str = "") -> list[tuple[str, int]]:
    """``(adapter name, dims)`` for every registered adapter and each dims it supports, for
    ``pytest.mark.parametrize`` (a new adapter is tested for free)."""
    from satikit.plugins import get_adapter_info, list_adapters

    return [(name, dims) for name in list_adapters(filter) for dims in get_adapter_info(name).dims]


# -- the context the checks share -------------------------------------------------------------
@dataclass
class _Context:
    name: str
    factory: Callable[..., Adapter]
    options: dict[str, Any]
    dims: int
    in_channels: int
    out_channels: int
    domain_encoding: bool
    size: int
    batch_size: int
    seed: int
    device: torch.device

    @property
    def overlap(self) -> int:
        return max(1, self.size // 4)

    @property
    def sati_possible(self) -> bool:
        return self.in_channels == self.out_channels

    def build(self, seed: int | None = None) -> Adapter:
        torch.manual_seed(self.seed if seed is None else seed)
        adapter = self.factory(
            dims=self.dims,
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            domain_encoding=self.domain_encoding,
            **self.options,
        )
        adapter.to(self.device)
        adapter.train(True)
        return adapter

    def data(
        self,
        domain: str,
        channels: int,
        spatial: Sequence[int] | None = None,
        batch: int | None = None,
        offset: int = 0,
    ) -> Tensor:
        """Uniform random values in ``domain``'s encoded range."""
        low, high = domain_range(domain, enabled=self.domain_encoding)  # type: ignore[arg-type]
        spatial = tuple(spatial) if spatial is not None else (self.size,) * self.dims
        shape = (batch or self.batch_size, channels, *spatial)
        generator = torch.Generator().manual_seed(self.seed * 7919 + offset)
        return (torch.rand(shape, generator=generator) * (high - low) + low).to(self.device)

    def batch(self) -> tuple[Tensor, Tensor]:
        return self.data("x", self.in_channels, offset=1), self.data(
            "y", self.out_channels, offset=2
        )

    def trainer(self, adapter: Adapter) -> Any:
        from satikit.checkpoint import AdapterSpec, DataSpec, RunConfig, SATISettings
        from satikit.checkpoint import TrainingSettings as Training
        from satikit.training import SATITrainer

        config = RunConfig(
            adapter=AdapterSpec(self.name, dict(self.options)),
            data=DataSpec(dims=self.dims),
            training=Training(
                crop=self.size, batch_size=self.batch_size, steps=4, seed=self.seed, amp=False
            ),
            sati=SATISettings(overlap=self.overlap, domain_encoding=self.domain_encoding),
        )
        return SATITrainer(adapter, config, device=str(self.device))


# -- helpers ------------------------------------------------------------------------------
def _shape_error(what: str, tensor: Any, expected: Sequence[int]) -> str | None:
    if not isinstance(tensor, Tensor):
        return f"{what} is a {type(tensor).__name__}, expected a torch.Tensor"
    if tuple(tensor.shape) != tuple(expected):
        return f"{what} has shape {tuple(tensor.shape)}, expected {tuple(expected)}"
    return None


def _expect_image(ctx: _Context, what: str, tensor: Any, expected: Sequence[int]) -> None:
    error = _shape_error(what, tensor, expected)
    if error:
        raise AssertionError(error)
    values = tensor.detach().float()
    if not torch.isfinite(values).all():
        raise AssertionError(f"{what} holds non-finite values")
    low, high = domain_range("y", enabled=ctx.domain_encoding)
    lo, hi = float(values.min()), float(values.max())
    if lo < low - _TOLERANCE or hi > high + _TOLERANCE:
        raise AssertionError(
            f"{what} spans [{lo:.4g}, {hi:.4g}], outside Y's encoded range "
            f"[{low}, {high}] (map the tanh output with "
            "satikit.encoding.to_domain)"
        )


def _expect_scalar(what: str, value: Any, *, graph: bool) -> float:
    if not isinstance(value, Tensor) or value.ndim != 0:
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise AssertionError(f"{what} must be a 0-dim tensor, got {shape}")
    if not torch.isfinite(value):
        raise AssertionError(f"{what} is not finite ({float(value)})")
    if graph and not value.requires_grad:
        raise AssertionError(f"{what} has no graph (requires_grad is False)")
    return float(value.detach())


def _snapshot(module: torch.nn.Module) -> list[Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _moved(module: torch.nn.Module, before: list[Tensor]) -> float:
    after = list(module.parameters())
    if not after:
        raise AssertionError(f"{type(module).__name__} has no parameters")
    return max(float((a.detach() - b).abs().max()) for a, b in zip(after, before))


def _same_state(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> str | None:
    if set(a) != set(b):
        return f"state dict keys differ: {sorted(set(a) ^ set(b))[:3]}"
    for key in a:
        if not torch.equal(a[key].cpu(), b[key].cpu()):
            return f"{key!r} differs"
    return None


@contextmanager
def _eval(adapter: Adapter) -> Iterator[Adapter]:
    adapter.train(False)
    try:
        yield adapter
    finally:
        adapter.train(True)


# -- the checks ---------------------------------------------------------------------------
def _check_build(ctx: _Context) -> str:
    adapter = ctx.build()
    if not isinstance(adapter, Adapter):
        missing = [
            m
            for m in (
                "name",
                "dims",
                "options",
                "generator_xy",
                "discriminator_y",
                "loss_terms",
                "criterion",
                "generator_step",
                "discriminator_step",
                "configure_optimizers",
                "translate",
                "state_dict",
                "load_state_dict",
                "training_state",
                "load_training_state",
                "to",
                "train",
            )
            if not hasattr(adapter, m)
        ]
        raise AssertionError(
            f"{type(adapter).__name__} does not implement "
            f"satikit.protocols.Adapter; missing {missing}"
        )
    if adapter.dims != ctx.dims:
        raise AssertionError(f"adapter.dims is {adapter.dims}, built for {ctx.dims}")
    if not isinstance(adapter.name, str) or not adapter.name:
        raise AssertionError(f"adapter.name must be a non-empty string, got {adapter.name!r}")
    try:
        json.dumps(dict(adapter.options))
    except TypeError as exc:
        raise AssertionError(f"adapter.options is not JSON-serialisable: {exc}") from None
    n_params = sum(int(v.numel()) for v in adapter.state_dict().values())
    return f"{type(adapter).__name__} '{adapter.name}', {n_params:,} weights"


def _check_generator(ctx: _Context) -> str:
    adapter = ctx.build()
    x, _ = ctx.batch()
    with torch.no_grad():
        out = adapter.generator_xy(x)
    expected = (ctx.batch_size, ctx.out_channels, *x.shape[2:])
    _expect_image(ctx, "generator_xy(x)", out, expected)
    return f"{tuple(x.shape)} -> {tuple(out.shape)}"


def _check_translate(ctx: _Context) -> str:
    adapter = ctx.build()
    x, _ = ctx.batch()
    with _eval(adapter):
        first = adapter.translate(x, seed=ctx.seed)
        second = adapter.translate(x, seed=ctx.seed)
        alone = torch.cat(
            [adapter.translate(x[i : i + 1], seed=ctx.seed) for i in range(x.shape[0])]
        )
    _expect_image(ctx, "translate(x)", first, (ctx.batch_size, ctx.out_channels, *x.shape[2:]))
    if first.requires_grad:
        raise AssertionError("translate(x) returned a tensor with graph (use torch.no_grad)")
    if not torch.equal(first, second):
        raise AssertionError("translate(x, seed=s) differs between two calls")
    diff = float((first - alone).abs().max())
    if diff > _TOLERANCE:
        raise AssertionError(
            f"a tile's translation depends on the other tiles of its batch "
            f"(max difference {diff:.3g}); tiles are batched freely"
        )
    return "encoded Y range, no graph, repeatable, batch-independent"


def _check_discriminator(ctx: _Context) -> str:
    adapter = ctx.build()
    _, y = ctx.batch()
    real = _expect_scalar(
        "criterion(D_Y(y), True)", adapter.criterion(adapter.discriminator_y(y), True), graph=True
    )
    fake = _expect_scalar(
        "criterion(D_Y(y), False)", adapter.criterion(adapter.discriminator_y(y), False), graph=True
    )
    return f"real {real:.4g}, fake {fake:.4g}"


def _check_host_step(ctx: _Context) -> str:
    adapter = ctx.build()
    x, y = ctx.batch()
    result = adapter.generator_step(x, y)
    if not isinstance(result, tuple) or len(result) != 2:
        raise AssertionError("generator_step must return (loss, y_hat_x)")
    loss, y_hat = result
    g = _expect_scalar("generator loss", loss, graph=True)
    _expect_image(ctx, "y_hat_x", y_hat, (ctx.batch_size, ctx.out_channels, *x.shape[2:]))
    if not y_hat.requires_grad:
        raise AssertionError("y_hat_x has no graph; SATI reuses it and must not recompute it")
    loss.backward()
    if not any(
        p.grad is not None and bool(p.grad.abs().sum() > 0)
        for p in adapter.generator_xy.parameters()
    ):
        raise AssertionError("the generator loss sends no gradient into generator_xy")
    d_loss = adapter.discriminator_step(x, y, y_hat.detach())
    d = _expect_scalar("discriminator loss", d_loss, graph=True)
    for p in adapter.discriminator_y.parameters():
        p.grad = None
    d_loss.backward()
    if not any(p.grad is not None for p in adapter.discriminator_y.parameters()):
        raise AssertionError("the discriminator loss sends no gradient into discriminator_y")
    bad = [k for k, v in adapter.loss_terms.items() if not isinstance(v, Tensor) or v.requires_grad]
    if bad:
        raise AssertionError(f"loss_terms {bad} must be detached tensors")
    return f"loss_G {g:.4g}, loss_D {d:.4g}, terms {sorted(adapter.loss_terms)}"


def _sati_step(ctx: _Context, adapter: Adapter) -> dict[str, Tensor]:
    x, y = ctx.batch()
    return ctx.trainer(adapter).train_step(x, y)


def _check_sati_step(ctx: _Context) -> str:
    if not ctx.sati_possible:
        raise _Skip(f"X has {ctx.in_channels} channels, Y {ctx.out_channels}: SATI needs equal")
    adapter = ctx.build()
    g_before, d_before = _snapshot(adapter.generator_xy), _snapshot(adapter.discriminator_y)
    terms = _sati_step(ctx, adapter)
    for key in ("g_total", "d_total", "adv_zy", "stitch", "d_sati"):
        if key not in terms:
            raise AssertionError(f"the SATI step reported no {key!r}")
        _expect_scalar(key, terms[key], graph=False)
    g_moved, d_moved = (
        _moved(adapter.generator_xy, g_before),
        _moved(adapter.discriminator_y, d_before),
    )
    if not g_moved > 0 or not d_moved > 0:
        raise AssertionError(
            f"weights did not move (generator_xy {g_moved}, discriminator_y {d_moved})"
        )
    return (
        f"g_total {float(terms['g_total']):.4g}, stitch {float(terms['stitch']):.4g}, "
        f"adv_zy {float(terms['adv_zy']):.4g}"
    )


def _check_state_dict(ctx: _Context) -> str:
    from satikit.checkpoint import load_weights, pack, save_weights

    adapter = ctx.build()
    state = adapter.state_dict()
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise AssertionError(f"state_dict entries {bad[:3]} are not name -> tensor")
    with tempfile.TemporaryDirectory() as tmp:
        path = save_weights(Path(tmp) / "model.safetensors", state)
        loaded = load_weights(path)
    other = ctx.build(seed=ctx.seed + 1)
    other.load_state_dict(loaded)
    error = _same_state(state, other.state_dict())
    if error:
        raise AssertionError(f"after load_state_dict: {error}")
    x, _ = ctx.batch()
    with _eval(adapter), _eval(other):
        if not torch.equal(adapter.translate(x, seed=ctx.seed), other.translate(x, seed=ctx.seed)):
            raise AssertionError("a loaded copy translates differently")
    host = adapter.training_state()
    pack(dict(host))
    other.load_training_state(host)
    return f"{len(state)} tensors via safetensors, training_state with {len(host)} entries"


def _check_determinism(ctx: _Context) -> str:
    first, second = ctx.build(), ctx.build()
    error = _same_state(first.state_dict(), second.state_dict())
    if error:
        raise AssertionError(f"two builds with seed {ctx.seed}: {error}")
    if not ctx.sati_possible:
        x, y = ctx.batch()
        losses = []
        for adapter in (first, second):
            torch.manual_seed(ctx.seed)
            losses.append(adapter.generator_step(x, y)[0].detach())
        if not torch.equal(*losses):
            raise AssertionError(f"host steps differ: {losses[0]} vs {losses[1]}")
        return "same weights; same host loss"
    results = []
    for adapter in (first, second):
        torch.manual_seed(ctx.seed)
        results.append(_sati_step(ctx, adapter))
    for key in ("g_total", "d_total"):
        if not torch.equal(results[0][key], results[1][key]):
            raise AssertionError(
                f"{key} differs: {float(results[0][key])} vs {float(results[1][key])}"
            )
    error = _same_state(first.state_dict(), second.state_dict())
    if error:
        raise AssertionError(f"after one SATI step each: {error}")
    return "same weights, same SATI losses and updates"


def _image_spatial(ctx: _Context) -> tuple[int, ...]:
    # Larger than a tile and not a multiple of it, so padding and several tiles are exercised.
    first = 2 * ctx.size - ctx.size // 4
    return (first, *([ctx.size + ctx.size // 2] * (ctx.dims - 1)))


def _check_tiling(ctx: _Context, strategy: str) -> str:
    from satikit.stitching import get_strategy, stitch
    from satikit.stitching.grid import TileGrid

    if get_strategy(strategy).continues and not ctx.sati_possible:
        raise _Skip("SATI tiling needs as many X as Y channels")
    adapter = ctx.build()
    spatial = _image_spatial(ctx)
    image = ctx.data("x", ctx.in_channels, spatial, batch=1, offset=3)[0].cpu().numpy()

    def fn(tiles: Tensor) -> Tensor:
        return adapter.translate(tiles, seed=ctx.seed)

    with _eval(adapter):
        out = stitch(
            image,
            fn,
            tile=ctx.size,
            overlap=ctx.overlap,
            strategy=strategy,
            batch_size=2,
            device=ctx.device,
        )
        first_tile = torch.from_numpy(image[(slice(None), *[slice(0, ctx.size)] * ctx.dims)])
        reference = fn(first_tile[None].to(ctx.device))[0].cpu()
    result = torch.from_numpy(out)
    _expect_image(ctx, f"{strategy} output", result[None], (1, ctx.out_channels, *spatial))
    chosen = get_strategy(strategy)
    if not chosen.blends:  # the first tile's own region is written from it alone
        grid = TileGrid.create(spatial, ctx.size, ctx.overlap, sati=chosen.continues)
        own = (slice(None), *grid.owned((0,) * ctx.dims))
        diff = float((result[own] - reference[own]).abs().max())
        if diff > _TOLERANCE:
            raise AssertionError(
                f"the first tile's region differs from translate(tile) by "
                f"{diff:.3g} (batch-dependent translate?)"
            )
    return f"{tuple(image.shape)} in tiles of {ctx.size}, overlap {ctx.overlap}"


def _check_shared_statistics(ctx: _Context) -> str:
    from satikit.stitching import stitch
    from satikit.stitching.norm import find_norm_layers

    adapter = ctx.build()
    try:
        layers = find_norm_layers(adapter)
    except ValueError as exc:
        if "no instance-norm layers" in str(exc):
            raise _Skip("generator_xy has no per-tile normalisation to share") from None
        raise
    spatial = _image_spatial(ctx)
    image = ctx.data("x", ctx.in_channels, spatial, batch=1, offset=5)[0].cpu().numpy()
    with _eval(adapter):
        out = stitch(
            image,
            lambda tiles: adapter.translate(tiles, seed=ctx.seed),
            tile=ctx.size,
            overlap=ctx.overlap,
            strategy="weighted",
            batch_size=2,
            device=ctx.device,
            norm="thumbnail",
            thumbnail_scale=1.0,
            norm_layers=adapter,
        )
    _expect_image(
        ctx, "weighted output", torch.from_numpy(out)[None], (1, ctx.out_channels, *spatial)
    )
    return f"{len(layers)} normalisation layer(s) take whole-image statistics"


_RUNNERS: dict[str, Callable[[_Context], str]] = {
    "build": _check_build,
    "generator_xy": _check_generator,
    "translate": _check_translate,
    "discriminator": _check_discriminator,
    "host_step": _check_host_step,
    "sati_step": _check_sati_step,
    "state_dict": _check_state_dict,
    "determinism": _check_determinism,
    **{f"tiling[{s}]": (lambda ctx, s=s: _check_tiling(ctx, s)) for s in TILING_STRATEGIES},
    "shared_statistics": _check_shared_statistics,
}


def _run(name: str, ctx: _Context) -> CheckResult:
    try:
        return CheckResult(name, "pass", _RUNNERS[name](ctx))
    except _Skip as skip:
        return CheckResult(name, "skip", str(skip))
    except Exception as exc:  # a failing check is a result, not a crash
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return CheckResult(name, "fail", f"{type(exc).__name__}: {message}")


def _resolve(
    adapter: str | AdapterInfo | Callable[..., Adapter], options: Mapping[str, Any] | None
) -> tuple[str, Callable[..., Adapter], dict[str, Any]]:
    if isinstance(adapter, str):
        from satikit.plugins import get_adapter_info

        adapter = get_adapter_info(adapter)
    if isinstance(adapter, AdapterInfo):
        merged = {**adapter.test_options, **dict(options or {})}
        return adapter.name, adapter.factory, adapter.resolve_options(merged)
    if not callable(adapter):
        raise TypeError(f"expected an adapter name, AdapterInfo or factory, got {adapter!r}")
    return getattr(adapter, "__name__", type(adapter).__name__), adapter, dict(options or {})


def check_adapter(
    adapter: str | AdapterInfo | Callable[..., Adapter],
    *,
    dims: int = 2,
    in_channels: int = 3,
    out_channels: int | None = None,
    options: Mapping[str, Any] | None = None,
    size: int | None = None,
    batch_size: int = 2,
    seed: int = 0,
    device: str | torch.device = "cpu",
    domain_encoding: bool = True,
    checks: Sequence[str] | None = None,
    threads: int | None = 1,
) -> ConformanceReport:
    """Run the conformance checks on one adapter configuration; never raises for a failing
    check (see :func:`assert_adapter_conforms`).

    Args:
        adapter: a registered name (its ``test_options`` are applied first), an
            :class:`~satikit.protocols.AdapterInfo`, or a bare factory
            ``factory(*, dims, in_channels, out_channels, domain_encoding, **options)``.
        dims: spatial dims to build for.
        in_channels / out_channels: channels of X / Y (``out_channels`` defaults to
            ``in_channels``; SATI checks are skipped when they differ).
        options: adapter options (for a name: overrides of its ``test_options``).
        size: crop and tile size in px (default :func:`default_size`); must suit the adapter
            (e.g. divisible by its downsampling factor).
        batch_size: crops per domain.
        seed: seeds weights, data and steps.
        device: where to run.
        domain_encoding: build and feed data with domain encoding (SATI III-C).
        checks: names from :data:`CHECKS` to run (default: all).
        threads: torch CPU threads while the checks run (restored afterwards); 1 suits the
            tiny test configurations best. None: leave the setting alone.

    Returns:
        the :class:`ConformanceReport`.

    Raises:
        ValueError: unknown adapter name, option or check name.
    """
    name, factory, resolved = _resolve(adapter, options)
    selected = list(CHECKS if checks is None else checks)
    unknown = [c for c in selected if c not in _RUNNERS]
    if unknown:
        raise ValueError(f"unknown checks {unknown}; choose from {list(CHECKS)}")
    size = int(size or default_size(dims))
    ctx = _Context(
        name,
        factory,
        resolved,
        int(dims),
        int(in_channels),
        int(in_channels if out_channels is None else out_channels),
        bool(domain_encoding),
        size,
        int(batch_size),
        int(seed),
        torch.device(device),
    )
    report = ConformanceReport(name, ctx.dims, size, dict(resolved))
    rng_state, n_threads = torch.get_rng_state(), torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        report.results = [_run(check, ctx) for check in selected]
    finally:
        torch.set_rng_state(rng_state)
        torch.set_num_threads(n_threads)
    return report


def assert_adapter_conforms(
    adapter: str | AdapterInfo | Callable[..., Adapter], **kwargs: Any
) -> ConformanceReport:
    """:func:`check_adapter`, raising :class:`ConformanceError` (an AssertionError, so pytest
    shows it as a test failure) with the whole report when a check fails.

    Returns:
        the report when every check passed or was skipped.
    """
    report = check_adapter(adapter, **kwargs)
    if not report.ok:
        raise ConformanceError(f"adapter does not conform:\n{report}")
    return report
