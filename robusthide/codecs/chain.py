"""A chain of codecs, spec ``a|b|c`` (e.g. ``resize:0.5|jpeg:q=80``, a platform's resize then recompress).

Steps run in order on the uint8 batch, each with its own parallelism (threads or processes). The chain's
``nbytes`` are the sizes of the **last lossy step that produces a bitstream** (in ``jpeg:q=50|png`` the
JPEG sizes, in ``jpeg:q=90|resize:0.5`` the JPEG sizes too: what was stored/transmitted last before the
final distortion); with no lossy coded step, those of the last coded step (``resize:0.5|png``: PNG
sizes); with none at all (``resize|crop``), zeros. ``library`` joins the steps' libraries with `` | ``.
"""

from __future__ import annotations

import numpy as np

from robusthide.codecs.base import Codec, CodecError


class Chain(Codec):
    """Apply ``steps`` in order (built by :func:`robusthide.codecs.get_codec` for ``a|b|c``)."""

    name = "chain"
    summary = "a|b|c: steps applied in order"

    def __init__(self, steps: list[Codec], spec: str = "", workers: int | None = None):
        if not steps:
            raise ValueError("a chain needs at least one step")
        super().__init__(spec or "|".join(s.spec for s in steps), workers)
        self.steps = list(steps)
        self.lossy = any(s.lossy for s in steps)
        self.bitstream = any(s.bitstream for s in steps)
        self.releases_gil = all(s.releases_gil for s in steps)
        self.library = " | ".join(s.library for s in steps)

    def sizes_step(self) -> int | None:
        """Index of the step whose sizes the chain reports (see the module docstring), or None."""
        coded = [i for i, s in enumerate(self.steps) if s.bitstream]
        lossy = [i for i in coded if self.steps[i].lossy]
        if lossy:
            return lossy[-1]
        return coded[-1] if coded else None

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        out, sizes = self.code_batch(image[None])
        return out[0], sizes[0]

    def code_batch(self, batch: np.ndarray) -> tuple[np.ndarray, list[int]]:
        keep = self.sizes_step()
        sizes = [0] * len(batch)
        x = batch
        for i, step in enumerate(self.steps):
            x, s = step.code_batch(x)
            if x.shape != batch.shape or x.dtype != np.uint8:
                raise CodecError(f"{self.spec}: step {step.spec} returned {x.shape} {x.dtype}")
            if i == keep:
                sizes = list(s)
        return x, sizes
