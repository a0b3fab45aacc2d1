"""File-level translation: a trained run + an image (or a folder of them) in, translations out.

Builds on :func:`satikit.stitching.stitch` and the out-of-core views of :mod:`satikit.io.arrays`:
the input is opened lazily (TIFF memmap / zarr / OME-Zarr / ``.npy``) and encoded tile by tile;
the output is decoded to the run's output dtype row band by row band straight into an on-disk
array that is renamed into place only when complete. ``*.ome.tif`` and ``*.ome.zarr`` targets
are viewer-ready pyramids (:mod:`satikit.io.ome`) carrying the input's pixel sizes and channel
names. Defaults (strategy, tile, overlap, encoding) come from the run's ``config.json``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from satikit.checkpoint import InferenceSettings, RunConfig, load_adapter
from satikit.devices import resolve_device
from satikit.encoding import check_finite, decode, dtype_range, encode
from satikit.io.arrays import (
    ChannelFirst,
    ChannelLastSink,
    NamedReads,
    PartialFiles,
    open_partial,
    output_array,
    partial_files,
    reported_as,
    spatial_channels,
)
from satikit.io.atomic import read_json, write_json
from satikit.io.images import list_images
from satikit.io.input_range import format_range, resolve_input_range
from satikit.io.ome import (
    PyramidOptions,
    open_viewer_partial,
    read_metadata,
    viewer_format,
    viewer_output,
)
from satikit.io.reading import open_array
from satikit.protocols import Adapter
from satikit.stitching import StitchCall, get_strategy, stitch_on_grid
from satikit.stitching.grid import TileGrid

__all__ = [
    "OUTPUT_SUFFIXES",
    "check_target",
    "describe",
    "open_input",
    "tile_grid",
    "translate_array",
    "translate_file",
    "Translation",
    "translate_path",
    "translation_pairs",
]


def _input_view(
    raw: Any, config: RunConfig, name: str, input_range: Any = None
) -> tuple[ChannelFirst, tuple[float, float] | None]:
    """``(C, *spatial)`` encoded float32 view of an on-disk ``(*spatial[, C])`` X image, and
    the range of its values mapped onto the run's (None: its dtype's; see
    :func:`satikit.io.input_range.resolve_input_range`, which checks a sample of the values against
    the run's for ``input_range`` None or ``"auto"``).

    Raises:
        ValueError: channels or dims that do not fit the run; values it was not trained on.
    """
    dims, encoding = int(config.data.dims), config.encoding
    _, channels = spatial_channels(raw.shape, dims, name=name)
    if channels != config.data.in_channels:
        raise ValueError(
            f"{name} has {channels} channels; the run was trained on {config.data.in_channels}"
        )
    in_range = resolve_input_range(
        raw, dims=dims, name=name, expected=config.data.trained_dtype, given=input_range
    )
    view = ChannelFirst(
        raw,
        channel_last=len(raw.shape) == dims + 1,
        transform=lambda block: encode(
            check_finite(block, name), "x", enabled=encoding, in_range=in_range
        ),
    )
    return view, in_range


def _pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad ``(C, *spatial)`` at the far end so every spatial size divides ``multiple``."""
    pads = [(0, 0)] + [(0, -n % multiple) for n in image.shape[1:]]
    if all(after == 0 for _, after in pads):
        return image
    reflect = all(after < n for (_, after), n in zip(pads[1:], image.shape[1:]))
    return np.pad(image, pads, mode="reflect" if reflect else "edge")


def reference_style(
    adapter: Adapter, config: RunConfig, path: str | os.PathLike[str]
) -> torch.Tensor:
    """One style code from a reference Y image, for adapters with styles (MUNIT).

    The reference is encoded as domain Y and cropped to at most one inference tile from its
    start, so a large reference costs one forward pass.

    Raises:
        ValueError: the adapter has no styles, or the reference does not fit the run.
    """
    encode_style = getattr(adapter, "encode_style", None)
    if encode_style is None:
        raise ValueError(f"--style-ref: adapter {config.adapter.name!r} has no styles")
    stored = NamedReads(open_array(path), str(path))
    spatial, channels = spatial_channels(stored.shape, config.data.dims, name=str(path))
    if channels != config.data.out_channels:
        raise ValueError(
            f"{path} has {channels} channels; the run's Y images have {config.data.out_channels}"
        )
    encoding = config.encoding
    view = ChannelFirst(
        stored,
        channel_last=len(stored.shape) > len(spatial),
        transform=lambda b: encode(b, "y", enabled=encoding),
    )
    tile = config.run_inference.tile
    tile = (tile,) * len(spatial) if isinstance(tile, int) else tile
    crop = view[(slice(None), *(slice(0, min(n, t)) for n, t in zip(spatial, tile)))]
    device = next(iter(adapter.generator_xy.parameters())).device
    with torch.inference_mode():
        return encode_style(torch.from_numpy(np.ascontiguousarray(crop))[None].to(device))


def tile_grid(settings: InferenceSettings, spatial: Sequence[int]) -> TileGrid | None:
    """The tile grid of resolved ``settings`` (:meth:`RunConfig.inference_settings`) over an
    image of ``spatial`` shape (None for ``strategy="none"``).

    Raises:
        ValueError: an invalid tile, overlap, seam or margin (see :meth:`TileGrid.create`).
    """
    return get_strategy(settings.strategy).grid(tuple(int(n) for n in spatial), settings)


def _stitch(
    adapter: Adapter,
    config: RunConfig,
    view: ChannelFirst,
    settings: InferenceSettings,
    *,
    out: Any,
    device: str | torch.device | None = None,
    progress: bool = False,
    call: StitchCall | None = None,
) -> np.ndarray:
    """Run the engine with resolved ``settings``; returns encoded ``(C_out, *spatial)`` (also
    written to ``out``).

    The adapter is where the normalisation layers of ``settings.norm`` are found; ``call``:
    the resume state, rows or pipeline (:class:`~satikit.stitching.StitchCall`; ``none``
    restarts).
    """
    s = settings
    style_ref = s.style_ref
    style = None if style_ref is None else reference_style(adapter, config, style_ref)

    def fn(tiles: torch.Tensor) -> torch.Tensor:
        if style is not None:
            return adapter.translate(tiles, style=style)  # type: ignore[call-arg]
        return adapter.translate(tiles, seed=s.style_seed)

    call = replace(call or StitchCall(), norm_layers=adapter)
    strategy = get_strategy(s.strategy)
    if s.norm != "tile" and not strategy.tiled:
        raise ValueError(
            f"--norm {s.norm} shares statistics between tiles; --strategy {s.strategy} runs "
            "the whole image in one pass (use --norm tile)"
        )
    if not strategy.tiled:  # one pass over the whole image: pad it to a size the net accepts
        image = _pad_to_multiple(view[...], getattr(adapter, "size_multiple", 1))
        result = stitch_on_grid(image, fn, None, s, device=device, progress=progress, call=call)
        result = result[(slice(None), *(slice(0, n) for n in view.shape[1:]))]
        if out is not None:
            out[...] = result
        return result
    grid = tile_grid(s, view.shape[1:])
    return stitch_on_grid(view, fn, grid, s, out=out, device=device, progress=progress, call=call)


def _output_layout(config: RunConfig, spatial: Sequence[int]) -> tuple[tuple, np.dtype]:
    channels = int(config.data.out_channels or 1)
    shape = (*spatial, channels) if channels > 1 else tuple(spatial)
    return tuple(int(s) for s in shape), np.dtype(config.data.output_dtype)


def translate_array(
    adapter: Adapter,
    config: RunConfig,
    raw: Any,
    settings: InferenceSettings | None = None,
    *,
    device: str | torch.device | None = None,
    progress: bool = False,
    name: str = "input",
    **given: Any,
) -> np.ndarray:
    """Translate one on-disk-layout image in memory with a trained adapter.

    Args:
        adapter: trained adapter (eval mode) on ``device``.
        config: the run's config (:func:`satikit.checkpoint.load_config`).
        raw: ``(*spatial)`` or ``(*spatial, C)`` image of domain X (numpy, memmap, zarr).
        settings: resolved settings (:meth:`RunConfig.inference_settings`); None: resolved
            from ``given`` over the run's.
        device: where tiles run (default: the adapter's device).
        progress: tqdm bar over tiles.
        name: how error messages call the input.
        **given: :class:`~satikit.checkpoint.InferenceSettings` fields (None: the run's or the
            default):

            * ``strategy``: ``none``, ``simple``, ``weighted`` or ``sati`` (run's default);
            * ``tile`` / ``overlap``: tile size and overlap, int or per dim (run's default);
            * ``seam``: ``"middle"``: cut tiles in the middle of the overlap (paper III-E);
              ``"start"``: at its start (the "w/o stitching strategy" ablation);
            * ``margin``: ``sati`` only: extra tile overlap so each strip ends inside its
              predecessor (see :func:`satikit.stitching.stitch`); default: the run's, else 0;
            * ``batch_size``: tiles per generator call;
            * ``order``: ``sati``: ``auto``, ``raster`` or ``wavefront`` (same output);
            * ``window``: ``weighted``: ``gaussian`` or ``pyramid``;
            * ``style_seed``: image-level seed for adapters with random styles (tiles agree);
            * ``style_ref``: a reference Y image whose style every tile uses (see
              :func:`reference_style`); overrides ``style_seed``;
            * ``norm``: instance-norm statistics per ``tile`` (default), from a ``thumbnail``
              (TIN), ``kernel``-averaged over neighbouring tiles (KIN) or interpolated per
              pixel between tile centres (``dense``); see
              :func:`satikit.stitching.stitch`. Tiled strategies only;
            * ``norm_kernel``: ``kernel``: size in tiles or spec such as ``"5:gaussian"``;
            * ``thumbnail_scale``: ``thumbnail``: thumbnail size / image size, in (0, 1];
            * ``input_range``: ``(low, high)`` of the input values to map onto the range the
              run was trained on, or ``"auto"`` (the image's sampled min and max); default:
              integer images of the run's dtype at their full range, float images on [0, 1]
              (see :mod:`satikit.io.input_range`).

    Returns:
        translated image ``(*spatial[, C_out])`` in the run's output dtype (no channel axis
        when ``C_out == 1``).

    Raises:
        ValueError: the input's channels, dims or values do not fit the run.
        TypeError: an unknown setting in ``given``, or both ``settings`` and ``given``.
    """
    if settings is not None and given:
        raise TypeError("pass either resolved settings or settings to resolve, not both")
    settings = settings or config.inference_settings(given)
    view, _ = _input_view(raw, config, name, settings.input_range)
    result = _stitch(adapter, config, view, settings, out=None, device=device, progress=progress)
    _, dtype = _output_layout(config, view.shape[1:])
    image = decode(result, "y", enabled=config.encoding, dtype=dtype)
    return image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@contextmanager
def _output(
    target: str | os.PathLike[str],
    source: str | os.PathLike[str],
    spatial: Sequence[int],
    config: RunConfig,
    job: Mapping[str, Any],
    *,
    overwrite: bool,
    resume: bool,
) -> Iterator[Any]:
    """The engine's ``(C_out, *spatial)`` sink over a resumable output at ``target``: decodes
    to the run's dtype; a viewer output (``.ome.tif``/``.ome.zarr``) builds its pyramid when
    the block ends, with the metadata of ``source``."""
    shape, dtype, decoder = _decoded_layout(config, spatial)
    if viewer_format(target) is not None:
        channels = int(config.data.out_channels or 1)
        with viewer_output(
            target,
            (channels, *spatial),
            dtype,
            transform=decoder,
            metadata=read_metadata(source),
            options=PyramidOptions(**{k: job[f] for k, f in _PYRAMID_FIELDS if f in job}),
            overwrite=overwrite,
            resume=resume,
        ) as sink:
            yield sink
        return
    with output_array(
        target, shape, dtype, overwrite=overwrite, resumable=True, resume=resume
    ) as array:
        yield ChannelLastSink(array, channel_last=len(shape) > len(spatial), transform=decoder)


def _decoded_layout(
    config: RunConfig, spatial: Sequence[int]
) -> tuple[tuple[int, ...], Any, Callable[[np.ndarray], np.ndarray]]:
    """The output's on-disk shape and dtype, and the decoder from the engine's encoded Y."""
    shape, dtype = _output_layout(config, spatial)
    encoding = config.encoding

    def decoder(block: np.ndarray) -> np.ndarray:
        return decode(block, "y", enabled=encoding, dtype=dtype)

    return shape, dtype, decoder


def _attach(target: str | os.PathLike[str], spatial: Sequence[int], config: RunConfig) -> Any:
    """The sink :func:`_output` yields, over the partial output another process created at
    ``target`` (that process renames it, or builds its pyramid, once all have written)."""
    shape, dtype, decoder = _decoded_layout(config, spatial)
    if viewer_format(target) is not None:
        channels = int(config.data.out_channels or 1)
        return open_viewer_partial(target, (channels, *spatial), dtype, transform=decoder)
    array = open_partial(target, shape, dtype)
    return ChannelLastSink(array, channel_last=len(shape) > len(spatial), transform=decoder)


def translate_file(
    adapter: Adapter,
    config: RunConfig,
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    resume: bool = False,
    pyramid_tile: int | None = None,
    compression: str | None = None,
    say: Callable[[str], object] = _stderr,
    announce: Callable[[str], object] | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    **given: Any,
) -> Path:
    """Translate ``source`` into ``target`` out of core.

    ``target``'s name picks the format: ``*.ome.tif``/``*.ome.tiff`` a tiled pyramidal
    OME-TIFF, ``*.ome.zarr`` an OME-Zarr (NGFF 0.4) multiscale image, both with the input's
    pixel sizes and channel names (if it is an OME-TIFF or OME-Zarr; see :mod:`satikit.io.ome`);
    other ``.tif``/``.tiff``, ``.zarr`` or ``.npy`` a plain array. The full-resolution output is
    written band by band into a partial on-disk array (:func:`satikit.io.arrays.partial_files`) and
    renamed (viewer outputs: turned into the pyramid) when complete. Next to it go the settings
    used and the engine's resume state, so an interrupted translation (Ctrl-C, a killed process)
    can continue with ``resume=True``; otherwise a stale partial is replaced. ``device``,
    ``progress`` and the inference settings ``given`` are those of :func:`translate_array`.
    The target is checked (:func:`check_target`) and the input's values against the run's
    (:func:`satikit.io.input_range.resolve_input_range`) before any work; errors name ``target``,
    never its hidden partial files.

    Args:
        resume: continue the interrupted translation into ``target`` with the settings it
            recorded (settings given must agree with them); a finished ``target`` without a
            partial is skipped; no partial: translate from the start. A viewer output whose
            full resolution was complete only rebuilds its pyramid.
        pyramid_tile: viewer outputs: tile / chunk size, a multiple of 16 (default 256, or the
            recorded one when resuming).
        compression: viewer outputs: ``"zlib"`` (default) or ``"none"``.
        say: where notices go (a skipped or replaced output); default: stderr.
        announce: if given, called with one line (:func:`describe`): the settings resolved
            for this file and how its values are read.

    Raises:
        FileExistsError: ``target`` exists and ``overwrite`` is False.
        FileNotFoundError / NotADirectoryError / PermissionError: ``target``'s folder does not
            exist, is a file, or cannot be written.
        ValueError: an unsupported output suffix; an input that does not fit the run;
            ``resume`` with settings (or an input) other than the recorded ones;
            ``pyramid_tile``/``compression`` for a target that is not a viewer output.
    """
    translation = Translation(
        adapter,
        config,
        Path(source),
        Path(target),
        given,
        overwrite=overwrite,
        resume=resume,
        pyramid_tile=pyramid_tile,
        compression=compression,
        say=say,
        announce=announce,
    )
    job = translation.prepare()
    if job is None:
        return Path(target)
    view = translation.view(job)
    with translation.create_output(job, view.shape[1:]) as sink:
        if not translation.stitched(job):
            call = StitchCall(state_path=translation.files.state, resume=resume)
            translation.run(job, view, sink, device=device, progress=progress, call=call)
            translation.mark_stitched(job)  # a resume skips the engine
    return Path(target)


@dataclass
class Translation:
    """Translating one image ``source`` into one output ``target`` with a loaded run.

    :meth:`prepare` decides and checks what the output depends on before any work,
    :meth:`create_output` creates the (resumable, partial) output, :meth:`attach_output` opens
    it from another process, :meth:`run` runs the engine, or one process's share of it, into it.
    One process does all of it (:func:`translate_file`); under torchrun rank 0 prepares and
    creates, and every rank attaches and runs its share (:mod:`satikit.translation.distributed`).
    Arguments as :func:`translate_file`'s; ``given``: the inference settings given.
    """

    adapter: Adapter
    config: RunConfig
    source: Path
    target: Path
    given: Mapping[str, Any] = field(default_factory=dict)
    overwrite: bool = False
    resume: bool = False
    pyramid_tile: int | None = None
    compression: str | None = None
    say: Callable[[str], object] = _stderr
    announce: Callable[[str], object] | None = None
    _view: ChannelFirst | None = field(default=None, repr=False)

    @classmethod
    def of(
        cls,
        adapter: Adapter,
        config: RunConfig,
        source: str | os.PathLike[str],
        target: str | os.PathLike[str],
        **options: Any,
    ) -> Translation:
        """The translation :func:`translate_file` runs with the keyword arguments ``options``
        (its output options and the inference settings; not ``device`` / ``progress``)."""
        own = {f.name for f in dataclasses.fields(cls) if f.init} - {"given", "_view"}
        named = {key: options.pop(key) for key in list(options) if key in own}
        return cls(adapter, config, Path(source), Path(target), options, **named)

    @property
    def files(self) -> PartialFiles:
        """The partial output's files (data, settings, resume states)."""
        return partial_files(self.target)

    def prepare(self) -> dict[str, Any] | None:
        """The job (what decides the output, as JSON values: the input, the resolved settings,
        the pyramid options; see :func:`_job`), after checking the target, the settings and the
        input's values; announces the settings. None: nothing to do (``resume`` of a finished
        output). Says when a stale partial output will be replaced."""
        check_target(self.target)
        files = self.files
        if self.resume and self.target.exists() and not files.data.exists():
            self.say(f"{self.target} is complete; skipped")
            return None
        if not self.resume and files.data.exists():
            self.say(
                f"replacing the partial output of an interrupted translation into {self.target}"
            )
        output = _pyramid_options(self.target, self.pyramid_tile, self.compression)
        job = _job(self.config, self.source, self.target, self.given, output, self.resume)
        settings = InferenceSettings.from_dict(job)
        raw = _open_raw(self.source)
        self._view, in_range = _input_view(raw, self.config, str(self.source), settings.input_range)
        if self.announce is not None:
            line = describe(settings, self.config, raw.dtype, in_range)
            self.announce(f"{self.source.name}: {line}")
        resumed = self.resume and files.data.exists()
        return {**job, "stitched": bool(resumed and job.get("stitched"))}

    def view(self, job: Mapping[str, Any]) -> ChannelFirst:
        """The input as the engine reads it (opened by :meth:`prepare`, or here)."""
        if self._view is None:
            self._view = open_input(self.config, self.source, job.get("input_range"))
        return self._view

    def stitched(self, job: Mapping[str, Any]) -> bool:
        """Whether the engine already finished (a resume only completes the output)."""
        return bool(job.get("stitched"))

    @contextmanager
    def create_output(self, job: Mapping[str, Any], spatial: Sequence[int]) -> Iterator[Any]:
        """The engine's sink over a new (or, resuming, the partial) output; the job is recorded
        beside it. Leaving the block completes the output (renamed; a viewer output gets its
        pyramid); an error leaves the partial output for ``resume``."""
        with (
            reported_as(self.target),
            _output(
                self.target,
                self.source,
                spatial,
                self.config,
                job,
                overwrite=self.overwrite,
                resume=self.resume,
            ) as sink,
        ):
            write_json(self.files.settings, job)
            yield sink

    def attach_output(self, spatial: Sequence[int]) -> Any:
        """This process's sink over the partial output another process created."""
        return _attach(self.target, spatial, self.config)

    def run(
        self,
        job: Mapping[str, Any],
        view: ChannelFirst,
        sink: Any,
        *,
        device: str | torch.device | None = None,
        progress: bool = False,
        call: StitchCall | None = None,
    ) -> None:
        """Run the engine (``call``: a share of it, a resume state) into ``sink``."""
        settings = InferenceSettings.from_dict(job)
        args = (self.adapter, self.config, view, settings)
        _stitch(*args, out=sink, device=device, progress=progress, call=call)
        sink.flush()  # the last band is on disk before the marker says so

    def mark_stitched(self, job: Mapping[str, Any]) -> None:
        """Record that the engine finished (a resume then only completes the output)."""
        write_json(self.files.settings, {**job, "stitched": True})


def _open_raw(source: str | os.PathLike[str]) -> NamedReads:
    return NamedReads(open_array(source), str(source))


def open_input(
    config: RunConfig, source: str | os.PathLike[str], input_range: Any = None
) -> ChannelFirst:
    """``source`` opened lazily as the engine's encoded ``(C, *spatial)`` float32 view.

    Args:
        input_range: as :class:`~satikit.checkpoint.InferenceSettings`'s: ``(low, high)``,
            ``"auto"`` or None (the values must be those the run was trained on).

    Raises:
        ValueError: unreadable, or its channels, dims or values do not fit the run.
    """
    return _input_view(_open_raw(source), config, str(source), input_range)[0]


#: The suffixes of plain array outputs (the viewer outputs: :func:`satikit.io.ome.viewer_format`).
OUTPUT_SUFFIXES = (".tif", ".tiff", ".zarr", ".npy")


def check_target(target: str | os.PathLike[str]) -> None:
    """Refuse, before any work, an output satikit cannot write: an unknown suffix, or a folder
    that does not exist, is a file or cannot be written into.

    Raises:
        ValueError: an unsupported suffix.
        FileNotFoundError / NotADirectoryError / PermissionError: the folder's problem.
    """
    path = Path(target)
    suffix = path.suffix.lower()
    if viewer_format(path) is None and suffix not in OUTPUT_SUFFIXES:
        kind = f"type {suffix!r}" if suffix else "type (no suffix)"
        raise ValueError(
            f"{path}: unsupported output {kind}; use .tif/.tiff, .ome.tif, .zarr, .ome.zarr or .npy"
        )
    folder = path.parent
    if not folder.exists():
        raise FileNotFoundError(f"{path}: its folder {folder} does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(f"{path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: cannot write into its folder {folder} (permission denied)")


def describe(
    settings: InferenceSettings,
    config: RunConfig,
    dtype: Any,
    in_range: tuple[float, float] | None,
) -> str:
    """The settings of a translation (resolved: :meth:`RunConfig.inference_settings`) and how
    its input's values are read, in one line: what ``satikit translate`` prints per image.

    Args:
        dtype: the input's dtype.
        in_range: the input values mapped onto the run's range (None: its dtype's), see
            :func:`satikit.io.input_range.resolve_input_range`.
    """
    s = settings
    strategy = get_strategy(s.strategy)
    if not strategy.tiled:
        parts = [f"strategy {s.strategy} (the whole image in one pass)"]
    else:
        parts = [f"strategy {s.strategy}", f"tile {_size(s.tile)}", f"overlap {_size(s.overlap)}"]
        for name in strategy.relevant(s):
            value = getattr(s, name)
            parts.append(f"{name} {value if isinstance(value, str) else _size(value)}")
        parts.append(_statistics(s))
    if s.style_ref is not None:
        parts.append(f"style of {s.style_ref}")
    elif s.style_seed is not None:
        parts.append(f"style seed {s.style_seed}")
    return ", ".join(parts) + "; " + _values(config, np.dtype(dtype), in_range, s.input_range)


def _sizes(value: Any) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),)


def _size(value: Any) -> str:
    """A size as the CLI spells it: ``128``, or ``128,64`` per dim."""
    sizes = _sizes(value)
    return str(sizes[0]) if len(set(sizes)) == 1 else ",".join(map(str, sizes))


def _statistics(s: InferenceSettings) -> str:
    if s.norm == "thumbnail":
        return f"norm thumbnail (scale {s.thumbnail_scale:g})"
    if s.norm == "kernel":
        return f"norm kernel ({s.norm_kernel})"
    if s.norm == "dense":
        return "norm dense (interpolated between tile centres)"
    return "norm tile (each tile's own statistics)"


def _values(
    config: RunConfig, dtype: np.dtype, in_range: tuple[float, float] | None, given: Any
) -> str:
    """How the input's values are read: ``input uint8 0..255, as trained``."""
    trained = f"{config.data.trained_dtype} {format_range(*config.data.trained_range)}"
    if in_range is not None:
        option = "--input-range auto" if given == "auto" else "--input-range"
        return f"input {dtype} {format_range(*in_range)} ({option}) read as {trained}"
    seen = f"input {dtype} {format_range(*dtype_range(dtype))}"
    if dtype == np.dtype(config.data.trained_dtype):
        return f"{seen}, as trained"
    return f"{seen} read as {trained}"


def _pyramid_options(
    target: str | os.PathLike[str], pyramid_tile: int | None, compression: str | None
) -> dict[str, Any]:
    """The viewer-output options given (``pyramid_tile``, ``compression``); refuses them for
    other outputs."""
    given = {
        key: value
        for key, value in (("pyramid_tile", pyramid_tile), ("compression", compression))
        if value is not None
    }
    if given and viewer_format(target) is None:
        raise ValueError(
            f"--pyramid-tile / --compression apply to .ome.tif and .ome.zarr outputs, "
            f"not to {Path(target).name}"
        )
    return given


def _job(
    config: RunConfig,
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    given: Mapping[str, Any],
    output: Mapping[str, Any],
    resume: bool,
) -> dict[str, Any]:
    """What decides the output of translating ``source`` into ``target``: the input, the
    inference settings (:meth:`RunConfig.inference_settings` of those ``given``; the recorded
    ones when resuming) and the pyramid options of a viewer output (``output`` given over the
    defaults), as JSON values.

    Raises:
        TypeError: an unknown setting.
        ValueError: bad pyramid options; resuming with other settings or another input.
    """
    settings = config.inference_settings(given)
    job = {"source": str(Path(source).resolve()), **settings.to_dict()}
    if viewer_format(target) is not None:
        defaults = PyramidOptions()
        job.update({"pyramid_tile": defaults.tile, "compression": defaults.compression, **output})
        PyramidOptions(**{k: job[f] for k, f in _PYRAMID_FIELDS})  # refuse bad values up front
    settings_file = partial_files(target).settings
    if resume and settings_file.exists():
        job = _recorded(settings_file, job, [*given, *output], target)
    return job


#: The viewer outputs' settings, recorded for ``resume`` too (level 0 is chunked by the tile).
_OUTPUT_RECORDED = ("pyramid_tile", "compression")
#: :class:`PyramidOptions` field -> its recorded setting.
_PYRAMID_FIELDS = (("tile", "pyramid_tile"), ("compression", "compression"))


def _option(value: Any) -> str:
    """A setting as the CLI spells it (``[32, 32]`` -> ``32,32``, ``[0.0, 1000.0]`` ->
    ``0,1000``)."""
    if isinstance(value, list):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def _recorded(
    path: Path, job: dict[str, Any], given: Sequence[str], target: str | os.PathLike[str]
) -> dict[str, Any]:
    """The job recorded at ``path`` for ``target``; refuses a different input, or a setting
    ``given`` whose value in ``job`` differs from the recorded one.

    Raises:
        ValueError: naming every conflict (as CLI options).
    """
    recorded = read_json(path)
    conflicts = [
        f"--{key.replace('_', '-')} {_option(job[key])} (it used {_option(recorded.get(key))})"
        for key in (*InferenceSettings.names(), *_OUTPUT_RECORDED)
        if key in given and job[key] != recorded.get(key)
    ]
    if job["source"] != recorded.get("source"):
        conflicts.insert(0, f"input {job['source']} (it used {recorded.get('source')})")
    if conflicts:
        raise ValueError(
            f"cannot resume the translation into {target}: it was started with other settings: "
            + "; ".join(conflicts)
            + " - drop these options, or translate again without --resume"
        )
    return recorded


def _is_array_path(path: Path) -> bool:
    return path.is_file() or path.suffix.lower() == ".zarr"


def translation_pairs(
    source: str | os.PathLike[str], target: str | os.PathLike[str]
) -> list[tuple[Path, Path]]:
    """``(input, output)`` paths of translating ``source`` into ``target``: one pair for an
    image (into ``target``, or under its own name into an existing folder ``target``), one per
    TIFF of a folder ``source`` (same names in the folder ``target``, created).

    Raises:
        FileNotFoundError: ``source`` does not exist.
        ValueError: a folder holds no TIFF.
    """
    source, target = Path(source), Path(target)
    if _is_array_path(source):
        if target.is_dir() and target.suffix.lower() != ".zarr":
            target = target / source.name
        return [(source, target)]
    if source.is_dir():
        files = list_images(source)
        if not files:
            raise ValueError(f"no TIFF images in {str(source)!r}")
        target.mkdir(parents=True, exist_ok=True)
        return [(path, target / path.name) for path in files]
    raise FileNotFoundError(f"no such file or folder: {str(source)!r}")


def translate_path(
    run_dir: str | os.PathLike[str],
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    device: str | None = None,
    overwrite: bool = False,
    **kwargs: Any,
) -> list[Path]:
    """Translate an image, or every TIFF of a folder, with the run in ``run_dir``.

    A folder ``source`` maps to a folder ``target`` (created) with the same file names; a file
    ``source`` with an existing folder ``target`` is written into it under its own name.
    ``kwargs`` are those of :func:`translate_file`; with ``resume=True`` a folder resumes file
    by file (finished files are skipped, the interrupted one continues, the rest start).

    Returns:
        the written (or already complete) files.

    Raises:
        FileNotFoundError: ``source`` does not exist or ``run_dir`` holds no run.
        FileExistsError: an output exists and ``overwrite`` is False.
        ValueError: a folder holds no TIFF, an input does not fit the run, or an output's
            suffix is unsupported (checked first, with its folder: :func:`check_target`).
    """
    pairs = translation_pairs(source, target)
    for _, dst in pairs:
        check_target(dst)
    torch_device = resolve_device(device or "auto")
    adapter, config = load_adapter(run_dir, device=torch_device)
    return [
        translate_file(
            adapter, config, src, dst, device=torch_device, overwrite=overwrite, **kwargs
        )
        for src, dst in pairs
    ]
