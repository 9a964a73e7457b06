"""Shared fixtures: small public-domain images from scikit-image's wheel."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def photos():
    from skimage import data

    return {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea()}


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory, photos):
    """A folder of a few photos (and crops) for training tests."""
    from PIL import Image

    d = tmp_path_factory.mktemp("photos")
    for name, im in photos.items():
        Image.fromarray(im).save(d / f"{name}.png")
        Image.fromarray(np.ascontiguousarray(im[::2, ::2])).save(d / f"{name}_half.png")
    return d


@pytest.fixture(scope="session")
def to_tensor():
    """A function: an H x W x 3 uint8 image -> a 1 x 3 x H x W float tensor in [0, 1]."""
    import torch

    def convert(im: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)[None].float() / 255.0

    return convert


@pytest.fixture(scope="session")
def write_clip():
    """A function: write uint8 H x W x 3 frames to ``path`` as an H.264 clip (10 fps, yuv420p, ``crf`` if
    given)."""
    av = pytest.importorskip("av")

    def write(path, frames, crf: int | None = None) -> None:
        h, w = frames[0].shape[:2]
        with av.open(str(path), "w") as out:
            s = out.add_stream("libx264", rate=10)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            if crf is not None:
                s.options = {"crf": str(crf)}
            for f in frames:
                for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                    out.mux(p)
            for p in s.encode():
                out.mux(p)

    return write


@pytest.fixture(scope="session")
def train_tiny_codec(tmp_path_factory, photo_dir):
    """A function training a tiny latent codec (N=16, M=192, 64 px crops, lr 3e-3) on :func:`photo_dir` into a
    new temporary folder; ``train(name, steps, batch, **kw)`` returns its codec file."""
    from robusthide.latent.train import train_codec

    def train(name: str, steps: int, batch: int, **kw):
        out = tmp_path_factory.mktemp(name)
        train_codec(photo_dir, out, steps=steps, N=16, M=192, size=64, batch=batch, lr=3e-3, max_side=256,
                    log_every=0, echo=False, **kw)
        return out / "codec.safetensors"

    return train
