"""build_attack: string grammar, dict / YAML form, round trips, seeds, clear errors."""

from __future__ import annotations

import pytest
import torch

from robusthide import RobustHideError
from robusthide.attacks import (
    AttackError,
    BatchSlices,
    Crop,
    DiffJPEG,
    GaussianNoise,
    Identity,
    JpegMask,
    JpegMixup,
    JpegSS,
    JpegSSMbrs,
    Paper003Attack,
    PerBatchChoice,
    PseudoDifferentiable,
    RandomQuality,
    Sequential,
    attack_spec,
    build_attack,
)

ROUND_TRIP = [
    "identity",
    "real(jpeg:q=50)",
    "real(jpeg:q=50,subsampling=444,backend=pillow)",
    "real(jpeg:q=10..90)",
    "jpegmask",
    "jpegmask(subsampling=false)",
    "jpegmask-hidden",
    "jpegdrop(quality=30)",
    "jpegss(quality=10..90)",
    "jpegss(rounding=mbrs)",
    "jpegss-mbrs(quality=75)",
    "diffjpeg",
    "diffjpeg(quality=25,rounding=ste)",
    "noise(sigma=0.01..0.05)",
    "noise(clip=false)",
    "blur(sigma=1.5,kernel=7)",
    "median(kernel=5)",
    "resize(scale=0.5..0.9,interpolation=bicubic)",
    "resize(keep_size=false)",
    "crop(ratio=0.035,fill=1)",
    "crop(aspect=0.5..2)",
    "cropresize",
    "cropout(ratio=0.25)",
    "dropout(p=0.1..0.5)",
    "brightness-contrast(brightness=-0.1..0.1,contrast=0.8..1.2)",
    "mixup003",
    "mixup003(kinds=jpegss+jpegmask+jpegdrop+diffjpeg,quality=20..80)",
    "paper003(base_quality=80,probs=0.4+0.15+0.15+0.15+0.15)",
    "choice(real(jpeg:q=50)@0.4,jpegmask@0.3,identity@0.3)",
    "choice(identity,jpegmask)",
    "slices(real(jpeg:q=50),real(jpeg:q=75,subsampling=444),identity)",
    "slices(jpegss(quality=10)@0.25,seq(resize,real(jpeg:q=80))@0.75)",
    "seq(resize(scale=0.5..0.9),choice(real(jpeg:q=10..90)@0.7,seq(blur,jpegmask)@0.3))",
]


@pytest.mark.parametrize("spec", ROUND_TRIP)
def test_canonical_specs_round_trip(spec):
    layer = build_attack(spec)
    assert layer.spec() == spec
    assert attack_spec(build_attack(layer.spec())) == spec


MBRS = "choice(real(jpeg:q=50)@0.4,jpegmask@0.3,identity@0.3)"


@pytest.mark.parametrize("given,canonical", [
    ("choice(real(jpeg:q=50)@0.4, jpegmask@0.3, identity@0.3)", MBRS),
    ("choice(real:jpeg:q=50@0.4, jpegmask@0.3, identity@0.3)", MBRS),
    ("  noise( 0.05 ) ", "noise"),
    ("blur(2)", "blur"),
    ("jpegss(q=50)", "jpegss"),
    ("jpegss(50, rounding=shin-song)", "jpegss"),
    ("JPEGSS(90)", "jpegss(quality=90)"),
    ("crop(0.035, fill=white)", "crop(ratio=0.035,fill=1)"),
    ("diffjpeg(50,rounding=cubic,backend=auto)", "diffjpeg"),
    ("jpegmask(hidden)", "jpegmask-hidden"),
    ("slices(identity@0.5, identity@0.5)", "slices(identity,identity)"),
])
def test_equivalent_forms(given, canonical):
    assert build_attack(given).spec() == canonical


def test_built_types_and_parameters():
    c = build_attack("choice(real(jpeg:q=50,subsampling=444)@0.4, jpegmask@0.3, identity@0.3)")
    assert isinstance(c, PerBatchChoice) and c.probs == pytest.approx([0.4, 0.3, 0.3])
    real, mask, ident = c.layers
    assert isinstance(real, PseudoDifferentiable) and real.codec == "jpeg:q=50,subsampling=444"
    assert isinstance(mask, JpegMask) and mask.form == "mbrs" and isinstance(ident, Identity)
    assert isinstance(build_attack("real(jpeg:q=10..90)"), RandomQuality)
    assert isinstance(build_attack("jpegss-mbrs"), JpegSSMbrs)
    assert isinstance(build_attack("jpegss(10..90)").quality, tuple)
    assert isinstance(build_attack("diffjpeg(rounding=ste)"), DiffJPEG)
    assert isinstance(build_attack("paper003"), Paper003Attack)
    assert isinstance(build_attack("mixup003(kinds=jpegss)"), JpegMixup)
    s = build_attack("slices(identity@0.2, jpegss@0.8)")
    assert isinstance(s, BatchSlices) and s.fractions == pytest.approx([0.2, 0.8])
    assert isinstance(build_attack("seq(identity, noise)"), Sequential)
    assert build_attack("noise(0.01..0.05)").sigma == (0.01, 0.05)


YAML = """
choice:
  - {layer: real, codec: 'jpeg:q=50', p: 0.4}
  - {layer: jpegmask, p: 0.3}
  - {layer: identity, p: 0.3}
"""


def test_yaml_and_dict_forms(tmp_path):
    expect = "choice(real(jpeg:q=50)@0.4,jpegmask@0.3,identity@0.3)"
    assert build_attack(YAML).spec() == expect
    d = {"choice": [{"layer": "real", "codec": "jpeg:q=50", "p": 0.4},
                    {"layer": "jpegmask", "p": 0.3}, {"layer": "identity", "p": 0.3}]}
    assert build_attack(d).spec() == expect
    f = tmp_path / "attack.yaml"
    f.write_text(YAML)
    assert build_attack(str(f)).spec() == expect
    assert build_attack(f).spec() == expect
    nested = {"seed": 3, "slices": [
        {"layer": "noise", "sigma": [0.01, 0.05], "fraction": 0.5},
        {"seq": [{"layer": "resize", "scale": 0.5}, "real(jpeg:q=50,subsampling=444)"], "fraction": 0.5},
    ]}
    assert build_attack(nested).spec() == (
        "slices(noise(sigma=0.01..0.05),seq(resize,real(jpeg:q=50,subsampling=444)))")
    seq = build_attack(["identity", {"layer": "jpegss", "q": 75}])
    assert seq.spec() == "seq(identity,jpegss(quality=75))"
    crop = build_attack({"layer": "crop", "ratio": 0.035, "fill": "white"})
    assert crop.spec() == "crop(ratio=0.035,fill=1)"


def test_seeds_make_builds_reproducible():
    x = torch.full((2, 3, 16, 16), 0.5)
    spec = "choice(noise(0.05)@0.5, crop(0.5)@0.5)"
    a, b, c = build_attack(spec, seed=1), build_attack(spec, seed=1), build_attack(spec, seed=2)
    ya = [a(x) for _ in range(4)]
    yb = [b(x) for _ in range(4)]
    yc = [c(x) for _ in range(4)]
    assert all(torch.equal(p, q) for p, q in zip(ya, yb))
    assert not all(torch.equal(p, q) for p, q in zip(ya, yc))
    d = build_attack({"seed": 1, "choice": ["noise(0.05)@0.5", "crop(0.5)@0.5"]})
    assert all(torch.equal(p, d(x)) for p in ya)
    assert isinstance(a.layers[0], GaussianNoise) and isinstance(a.layers[1], Crop)
    assert a.layers[0].generator is not a.layers[1].generator


@pytest.mark.parametrize("spec,match", [
    ("", "empty"),
    ("nosuch", "unknown layer 'nosuch'"),
    ("choice(identity, nosuch@0.5)", "unknown layer"),
    ("choice(", "unbalanced"),
    ("crop(0.5))", "unbalanced"),
    ("noise(0.1)x", "expected NAME"),
    ("noise(sigma=2)", "sigma"),
    ("noise(0.1, 0.2)", "bare value"),
    ("noise(foo=1)", "unknown parameter 'foo'"),
    ("noise(sigma=0.1, sigma=0.2)", "twice"),
    ("noise(sigma=a..b)", "range"),
    ("blur(kernel=4)", "kernel"),
    ("identity(3)", "bare value"),
    ("identity@0.3", "top-level"),
    ("slices(identity@0.5, jpegmask@0.6)", "sum to 1"),
    ("choice(identity@0, jpegmask@0)", "positive sum"),
    ("choice(identity, slices=0)", "slices must be"),
    ("choice(identity, depth=2)", "unknown option 'depth'"),
    ("maybe(identity, p=2)", "p must be"),
    ("from_step(identity, step=-1)", "step must be"),
    ("resize(0.5, between=nosuch)", "unknown layer 'nosuch'"),
    ("real(jpeg:q=50;grad=half)", "grad must be"),
    ("choice(identity@0.5, jpegmask)", "every item"),
    ("choice(identity@x, jpegmask@0.5)", "bad weight"),
    ("choice()", "needs layers"),
    ("seq(identity@0.5)", "no '@' weight"),
    ("real", "codec spec"),
    ("real()", "codec spec"),
    ("real(nosuchcodec:q=1)", "nosuchcodec"),
    ("real(jpeg:q=500)", "q must be"),
    ("real(jpeg:q=10..20,subsampling=420..444)", "exactly one range"),
    ("jpegss(rounding=floor)", "rounding"),
    ("mixup003(kinds=jpegss+png)", "kinds"),
    ("diffjpeg(generator=3)", "generator"),
    ("choice: [{layer: nosuch}]", "unknown layer"),
    ("slices: [{layer: identity, p: 0.4}, {layer: identity, p: 0.4}]", "sum to 1"),
    ("{layer: [}", "invalid YAML"),
    ("choice: identity", "must be a list"),
    ("no/such/attack.yaml", "cannot read"),
])
def test_bad_specs_give_clear_errors(spec, match):
    with pytest.raises(AttackError, match=match) as e:
        build_attack(spec)
    msg = str(e.value)
    assert isinstance(e.value, RobustHideError)
    assert msg.startswith("bad attack spec ") and repr(spec) in msg
    assert "\n" not in msg


@pytest.mark.parametrize("obj,match", [
    ({"layer": "identity", "choice": []}, "exactly one"),
    ({"sigma": 0.1}, "layer: NAME"),
    ({"layer": "real"}, "codec spec"),
    ({"layer": "noise", "p": "x"}, "weight must be a number"),
    ({"seed": "x", "layer": "identity"}, "seed"),
    (42, "expected a dict"),
])
def test_bad_dicts(obj, match):
    with pytest.raises(AttackError, match=match):
        build_attack(obj)


def test_specs_of_built_modules():
    assert JpegSS(50, "mbrs").spec() == "jpegss(rounding=mbrs)"
    assert JpegMask("hidden", quality=30).spec() == "jpegmask-hidden(quality=30)"
    assert build_attack(JpegMask("hidden", quality=30).spec()).quality == 30
    assert PseudoDifferentiable("jpeg:q=50").spec() == "real(jpeg:q=50)"
    assert "JpegSS" in repr(JpegSS())
