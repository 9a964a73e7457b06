"""The codec interface shared by training, evaluation and the command line.

A codec takes a batch of RGB images and returns the decoded batch (same shape, dtype and, for
tensors, device) plus the compressed size of each image in bytes.

Accepted batches:
  * numpy ``uint8`` of shape ``N x H x W x 3`` (or a single ``H x W x 3`` image);
  * torch float tensors in [0, 1] of shape ``N x 3 x H x W`` (or ``3 x H x W``), converted to uint8
    by *rounding* (never truncation) before coding and back to float after.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from robusthide import RobustHideError


class CodecError(RobustHideError):
    """Malformed spec, missing codec, or bad input for a codec."""


class CodecUnavailableError(CodecError):
    """The codec exists but its library (backend) is missing here."""


@dataclass
class CodecResult:
    """Decoded images (same type/shape/dtype as the input) and compressed sizes in bytes.

    ``nbytes[i]`` is the size of image ``i``'s bitstream; for a batch coded as one video clip the
    clip size is shared equally among its frames; for pure distortions (resize, crop) it is 0.
    """

    images: Any
    nbytes: list[int]

    def bpp(self) -> list[float]:
        """Bits per pixel of each image, from the real compressed sizes."""
        h, w = _hw(self.images)
        return [8.0 * b / (h * w) for b in self.nbytes]


def _hw(images: Any) -> tuple[int, int]:
    if isinstance(images, np.ndarray):
        return images.shape[-3], images.shape[-2]
    return int(images.shape[-2]), int(images.shape[-1])


def to_uint8_batch(images: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Convert a batch to uint8 NHWC; return it with a function that converts back."""
    if isinstance(images, np.ndarray):
        single = images.ndim == 3
        arr = images[None] if single else images
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise CodecError(f"expected RGB images N x H x W x 3, got shape {tuple(images.shape)}")
        if arr.dtype != np.uint8:
            if np.issubdtype(arr.dtype, np.floating):
                f = arr
                arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)

                def back_float(out: np.ndarray) -> np.ndarray:
                    res = out.astype(f.dtype) / 255.0
                    return res[0] if single else res

                return np.ascontiguousarray(arr), back_float
            raise CodecError(f"expected uint8 or float images, got {arr.dtype}")

        def back(out: np.ndarray) -> np.ndarray:
            return out[0] if single else out

        return np.ascontiguousarray(arr), back
    try:
        import torch
    except ImportError as e:  # pragma: no cover
        raise CodecError(f"unsupported image batch type {type(images).__name__}") from e
    if isinstance(images, torch.Tensor):
        single = images.ndim == 3
        t = images[None] if single else images
        if t.ndim != 4 or t.shape[1] != 3:
            raise CodecError(f"expected tensors N x 3 x H x W, got shape {tuple(images.shape)}")
        dev, dt = t.device, t.dtype
        if dt == torch.uint8:
            arr = t.detach().permute(0, 2, 3, 1).cpu().numpy()
        else:
            arr = (t.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8)
            arr = arr.permute(0, 2, 3, 1).cpu().numpy()

        def back_t(out: np.ndarray) -> Any:
            o = torch.from_numpy(np.ascontiguousarray(out)).permute(0, 3, 1, 2).to(dev)
            o = o if dt == torch.uint8 else o.to(dt) / 255.0
            return o[0] if single else o

        return np.ascontiguousarray(arr), back_t
    raise CodecError(f"unsupported image batch type {type(images).__name__}")


def default_workers() -> int:
    """Number of workers for codec work: ROBUSTHIDE_CODEC_WORKERS, else all cores."""
    env = os.environ.get("ROBUSTHIDE_CODEC_WORKERS")
    if env:
        return max(1, int(env))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


_POOLS: dict[int, ThreadPoolExecutor] = {}
_PROC_POOLS: dict[int, ProcessPoolExecutor] = {}
_POOL_LOCK = threading.Lock()


def thread_pool(workers: int) -> ThreadPoolExecutor:
    """A shared thread pool of ``workers`` threads (for libraries that release the GIL)."""
    with _POOL_LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="codec")
        return _POOLS[workers]


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A shared process pool of ``workers`` processes (for libraries that hold the GIL).

    The processes come from a ``forkserver`` (``spawn`` where there is none): never a bare ``fork`` of a
    process that may hold torch/OpenMP threads. They are started once and reused.
    """
    with _POOL_LOCK:
        pool = _PROC_POOLS.get(workers)
        if pool is None or getattr(pool, "_broken", False):
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
            pool = _PROC_POOLS[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        return pool


def _code_chunk(codec: Codec, chunk: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Process-pool worker (module level, so it pickles): code a chunk of images with ``codec``."""
    return [codec.code_one(im) for im in chunk]


class Codec:
    """Base class. Image codecs implement :meth:`code_one`; batch codecs override :meth:`code_batch`.

    Subclasses set ``name`` (the spec name) and ``library`` (the backend, shown by ``robusthide codecs``).
    A codec instance must stay picklable (plain attributes only): codecs whose library holds the GIL are
    sent to worker processes.
    """

    name: str = ""
    library: str = ""
    lossy: bool = True
    #: False for pure distortions (resize, crop) that produce no bitstream (their ``nbytes`` are 0).
    bitstream: bool = True
    #: True where the library releases the GIL, so threads give real parallelism; False sends
    #: :meth:`code_batch` to a process pool (measured per library, see ``robusthide bench codecs``).
    releases_gil: bool = True
    #: One line shown by ``robusthide codecs``.
    summary: str = ""

    def __init__(self, spec: str = "", workers: int | None = None):
        self.spec = spec or self.name
        self.workers = workers

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        """Encode and decode one uint8 H x W x 3 image; return (decoded, compressed bytes)."""
        raise NotImplementedError

    def code_batch(self, batch: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """Code a uint8 N x H x W x 3 batch, in parallel across images.

        Threads where the library releases the GIL, else a process pool fed one contiguous chunk per
        worker (so each image costs one pickle round trip, not one task).
        """
        n = len(batch)
        workers = min(n, self.workers or default_workers())
        if workers <= 1 or n <= 1:
            outs = [self.code_one(im) for im in batch]
        elif self.releases_gil:
            outs = list(thread_pool(workers).map(self.code_one, batch))
        else:
            pool: Executor = process_pool(workers)
            chunks = np.array_split(batch, workers)
            outs = [o for part in pool.map(_code_chunk, [self] * len(chunks), chunks) for o in part]
        return np.stack([o[0] for o in outs]), [int(o[1]) for o in outs]

    def __call__(self, images: Any) -> CodecResult:
        arr, back = to_uint8_batch(images)
        if arr.shape[0] == 0:
            return CodecResult(back(arr), [])
        out, sizes = self.code_batch(arr)
        if out.shape != arr.shape or out.dtype != np.uint8:
            raise CodecError(f"{self.spec}: codec returned {out.shape} {out.dtype}, "
                             f"expected {arr.shape} uint8")
        return CodecResult(back(out), list(sizes))

    def __repr__(self) -> str:
        return f"<codec {self.spec}>"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """(is this codec usable here, 'library version' or the reason it is not)."""
        return True, cls.library
