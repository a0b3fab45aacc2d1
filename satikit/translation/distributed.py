"""``torchrun ... -m satikit translate``: one translation shared out over several processes.

Every process loads the run and opens the input; rank 0 checks the job and creates the
output, the others then write into it; rank 0 finishes it (renames it, builds the pyramid of
a viewer output) once every rank is done. Each case gives the same file as one process:

- **a folder**: its files are dealt out (largest first, each to the rank with the fewest
  bytes so far); each file is translated whole by one rank (:func:`~satikit.translation.translate.
  translate_file`), so it is written once and resumes as in one process.
- **one image, ``simple`` / ``weighted``**: the output rows are cut into one contiguous range
  per rank at chunk boundaries of the output (zarr: its chunk rows; memory-mapped TIFF /
  ``.npy`` / OME-TIFF level 0: any row), so no two ranks write into one chunk; each rank runs
  the batches that reach its rows (:func:`~satikit.stitching.stitch_on_grid` ``rows``). Tile
  rows that straddle a cut are computed by both ranks.
- **one image, ``sati``**: bands of tile rows are dealt out round robin and pipelined: a rank
  starts a batch once the strip above it has arrived from the previous rank
  (:mod:`satikit.stitching.pipeline`, over :class:`~satikit.translation.comm.GlooRing`), so N ranks
  stitch N bands at once along the wavefront, each tile once. A band is one tile row, or
  ``batch_size`` rows in wavefront order (the batches of one process, kept for bit-identity),
  so N ranks all work when there are at least N bands.
- **one image, ``none``**: one forward pass cannot be shared: rank 0 runs it, the others wait.

Every output format works (plain TIFF and ``.npy`` are memory maps, so disjoint rows are
disjoint bytes; zarr outputs are written in whole chunks). ``--norm kernel`` / ``dense`` on one image
are refused: their caching pass needs every tile's statistics before any tile is final (translate
the image in one process, or a folder).

Resume: the output's partial files are those of one process, plus the ranks' engine states in
:attr:`satikit.io.arrays.PartialFiles.shards` (``simple``/``weighted``: one per rank and number of
ranks; another number of ranks starts the image again; ``sati``: one per band, so any number
of ranks continues). A rank that fails exits with its error; the others stop
(:class:`~satikit.translation.comm.PeerFailure`) and keep the partial output for ``--resume``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from satikit.checkpoint import InferenceSettings, RunConfig, load_adapter
from satikit.devices import resolve_device
from satikit.protocols import Adapter
from satikit.stitching import Pipeline, StitchCall, get_strategy
from satikit.stitching.pipeline import saved_band
from satikit.stitching.statistics import CACHING_NORMS, NormSettings
from satikit.translation.comm import Comm
from satikit.translation.translate import (
    Translation,
    check_target,
    tile_grid,
    translate_file,
    translation_pairs,
)

__all__ = ["deal_files", "row_ranges", "translate_path_distributed"]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def row_ranges(height: int, size: int, align: int = 1) -> list[tuple[int, int]]:
    """Cut rows ``[0, height)`` into ``size`` contiguous ranges of about equal height whose
    inner cuts are multiples of ``align`` (ranges may be empty when there are fewer chunk
    rows than ranks).

    Returns:
        ``[(start, stop), ...]``, one per rank, covering ``[0, height)`` in order.
    """
    cuts = [min(height, round(height * r / size / align) * align) for r in range(size)]
    cuts.append(height)
    return list(zip(cuts, cuts[1:]))


def deal_files(sizes: list[int], size: int) -> list[list[int]]:
    """Deal files out to ``size`` ranks: largest first, each to the rank with the fewest bytes
    so far (ties: the lower rank); returns each rank's file indices in their original order."""
    loads, shares = [0] * size, [[] for _ in range(size)]  # type: ignore[var-annotated]
    for index in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        rank = min(range(size), key=lambda r: (loads[r], r))
        loads[rank] += sizes[index]
        shares[rank].append(index)
    return [sorted(share) for share in shares]


def _file_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def translate_path_distributed(
    run_dir: str | os.PathLike[str],
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    comm: Comm,
    device: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    say: Callable[[str], object] = _stderr,
    **kwargs: Any,
) -> list[Path]:
    """:func:`satikit.translation.translate.translate_path` shared out over the ranks of ``comm``.

    Every rank calls it with the same arguments (see the module docstring for who does what).
    ``kwargs`` are those of :func:`~satikit.translation.translate.translate_file`; ``progress``
    should be True on rank 0 only.

    Returns:
        every written (or already complete) output, on every rank.

    Raises:
        FileNotFoundError / FileExistsError / ValueError: as ``translate_path`` (on rank 0 for
            what it checks before the work; the others then stop quietly), and ``--norm
            kernel`` / ``dense`` with one image.
        PeerFailure: another rank failed.
    """
    torch_device = resolve_device(device or "auto")
    loaded: list[tuple[Adapter, RunConfig]] = []

    def prepare() -> list[tuple[Path, Path]]:  # rank 0 first, so a bad run is refused once
        loaded.append(load_adapter(run_dir, device=torch_device))
        pairs = translation_pairs(source, target)
        for _, dst in pairs:
            check_target(dst)
        if not (overwrite or resume):
            for _, dst in pairs:
                if dst.exists():
                    raise FileExistsError(
                        f"{dst} exists; pass overwrite=True (CLI: --force) to replace it"
                    )
        return pairs

    pairs = comm.share(prepare)
    adapter, config = loaded[0] if loaded else load_adapter(run_dir, device=torch_device)
    options = dict(overwrite=overwrite, resume=resume, say=say, device=torch_device, **kwargs)
    if len(pairs) == 1 and pairs[0][0] == Path(source):  # one image (a file or a .zarr)
        src, dst = pairs[0]
        return [_translate_image(adapter, config, src, dst, comm, **options)]
    shares = deal_files([_file_size(src) for src, _ in pairs], comm.size)
    for index in shares[comm.rank]:
        translate_file(adapter, config, *pairs[index], **options)
    comm.barrier()
    return [dst for _, dst in pairs]


def _translate_image(
    adapter: Adapter,
    config: RunConfig,
    source: Path,
    target: Path,
    comm: Comm,
    *,
    device: Any = None,
    progress: bool = False,
    **options: Any,
) -> Path:
    """One image into one output, shared out over the ranks (see the module docstring);
    ``options``: :func:`~satikit.translation.translate.translate_file`'s."""
    translation = Translation.of(adapter, config, source, target, **options)
    resume = translation.resume
    files = translation.files
    with ExitStack() as stack:

        def prepare() -> tuple[dict[str, Any], int | None] | None:  # rank 0: check, create
            job = translation.prepare()
            if job is None:
                return None
            spatial = translation.view(job).shape[1:]  # a bad input is refused once
            _check_job(spatial, job)
            stack.enter_context(translation.create_output(job, spatial))
            if not resume:
                shutil.rmtree(files.shards, ignore_errors=True)
            files.shards.mkdir(exist_ok=True)
            partial = resume and files.data.exists()
            return job, saved_band(files.shards) if partial else None  # one view for all

        plan = comm.share(prepare)
        if plan is None:
            return target
        job, band = plan
        view = translation.view(job)
        if not translation.stitched(job):
            sink = translation.attach_output(view.shape[1:])  # every rank: its own handle
            call = _share(comm, job, sink, view.shape[1], files.shards, resume, band)
            if call is not None:
                translation.run(job, view, sink, device=device, progress=progress, call=call)
            else:
                sink.flush()
            comm.barrier()
            if comm.rank == 0:
                translation.mark_stitched(job)
    return target  # rank 0 has renamed the output / built its pyramid on leaving the stack


def _check_job(spatial: tuple[int, ...], job: dict[str, Any]) -> None:
    """Refuse, on rank 0 before any work, settings every rank would refuse (so the error is
    printed once) and ``--norm kernel`` / ``dense``.

    Raises:
        ValueError: bad grid or normalisation settings; ``--norm kernel`` / ``dense`` with
            tiles.
    """
    settings = InferenceSettings.from_dict(job)
    NormSettings.create(settings.norm, settings.norm_kernel, settings.thumbnail_scale)
    if not get_strategy(settings.strategy).tiled:
        return
    tile_grid(settings, spatial)
    if settings.norm in CACHING_NORMS:
        raise ValueError(
            f"--norm {settings.norm} cannot be shared out over processes: its caching pass needs every "
            "tile's statistics first (translate this image in one process, or use --norm tile "
            "or thumbnail)"
        )


def _share(
    comm: Comm,
    job: dict[str, Any],
    sink: Any,
    height: int,
    shards: Path,
    resume: bool,
    band: int | None,
) -> StitchCall | None:
    """What this rank runs of the engine for one image (None: nothing): ``none`` on rank 0
    only; ``sati`` its bands, pipelined; ``simple`` / ``weighted`` its range of output rows,
    with its own resume state in ``shards``; ``height``: the image's first spatial size."""
    strategy = get_strategy(job["strategy"])
    if not strategy.tiled:
        return StitchCall() if comm.rank == 0 else None
    if strategy.continues:
        return StitchCall(
            pipeline=Pipeline(comm.ring(), sink.row_chunk, state_dir=shards, resume_after=band)
        )
    start, stop = row_ranges(height, comm.size, sink.row_chunk)[comm.rank]
    if stop <= start:
        return None
    state = shards / f"rank{comm.rank}of{comm.size}.safetensors"
    return StitchCall(rows=(start, stop), state_path=state, resume=resume)
