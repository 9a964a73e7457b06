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
