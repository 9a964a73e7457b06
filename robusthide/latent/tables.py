"""``robusthide latent tables``: paper 004's Tables 1-4 on stand-in photo sets, resumable per (row, image).

**Stand-in sets.** The paper's data sets cannot be downloaded here; each is stood in for by a named, seeded
set of crops of the *validation split* of the photo folder (``robusthide data photos``; split by a hash of
the file name, :func:`robusthide.training.data.split_of`, so no photo the codecs trained on is used):

* ``div2k`` (Table 2; DIV2K: 2K photos, 512 px crops): the val photos whose shorter side is at least
  :data:`DIV2K_MIN_SIDE` px, scaled so the shorter side is 2.5 x ``size``; a ``size`` crop at a seeded position
  (about 0.4 of the shorter side, as 512 is of DIV2K's ~1350 px).
* ``coco`` (Table 3; MS COCO: ~640 x 480 photos of objects in context, 512 px crops): the other val photos,
  scaled so the shorter side is 1.25 x ``size``; a ``size`` crop at a seeded position (most of the view).
* ``celeba`` (Table 1; CelebA: aligned face crops, 192 px in the paper): every val photo, framed as a
  portrait: a square of 0.6 x the shorter side centred on the largest face that scikit-image's LBP
  frontal-face cascade (shipped inside scikit-image) finds, else on the photo's centre, with a seeded jitter
  of +-0.1 x the shorter side, resized to ``size``.

No crop is upscaled: a photo whose shorter side is below ``ZOOM[set] x size`` is left out of the set.
Crop i of a set takes photo ``order[i % P]`` (a seeded permutation of the set's P photos), so every photo is
used about N / P times, and crop i, and its message, depend only on (set, seed, i): a run with a larger N
extends a smaller one.

**Rows** (1 hidden bit per pixel, Bernoulli(1/2), one message per image; as :mod:`.bench` and
:mod:`.bench_liso`): FNNS (float32, 96 bpp), FNNS-fp16 (48 bpp), FNNS-png, FNNS-jpgQ, FNNS-JPGQ_TRAIN (Q = 90, 70,
50); LISO, LISO-png, LISO-jpgQ, LISO-JPEG (with ``--liso`` / ``--liso-jpeg``); for each codec the codec alone
(``hyper_L`` / ``ELIC_L``, no message) and code editing (``hyperbase_L`` / ``ELICbase_L``), read from the real
bitstream decoded to 8 bits. Table 4 takes FNNS, FNNS-jpg90, FNNS-JPG90_TRAIN, the codec rows, LISO and
LISO-jpg90 on all three sets.

**Resuming.** Each (row, image) result -- PSNR, bpp, bit accuracy, the four detectors' scores, CPU seconds --
is stored in ``<out_dir>/latent-tables-cache.json`` under a key hashing the row, the set, the image (its
pixels) and every setting the row depends on (model ids, iterations, editing options). Rows computed together
(FNNS and its saved forms; a codec alone and its edited latent) form a *group*; a group is recomputed for an
image only when one of its rows is missing. The cache is rewritten (under a lock, atomically) after every
group, so a stopped run continues where it stopped, and tables sharing rows (Table 4 and Tables 1-3) share
them. The pages ``latent-tableK.md`` keep the hand-written text below their ``## Reading`` heading;
``latent-tableK.png`` shows the crops.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from robusthide import RobustHideError
from robusthide.latent import defaults as D
from robusthide.latent import paper004 as P
from robusthide.latent import steganalysis as sa
from robusthide.latent.bench import _acc, _coded, _u8
from robusthide.latent.editing import EditConfig, codec_lambda1, edit_latent
from robusthide.latent.fnns import FnnsConfig, fnns_embed
from robusthide.latent.models import pad
from robusthide.latent.report import write_results
from robusthide.latent.tables_report import missing_rows, table_markdown
from robusthide.metrics import psnr, rsbpp, rsbpp_rate

SETS = ("celeba", "div2k", "coco")
#: shorter side (px, as stored) from which a val photo is in the ``div2k`` set
DIV2K_MIN_SIDE = 1000
#: shorter side of a photo over the crop size: the share of the view a crop takes is 1 / ZOOM (celeba: a square
#: of 0.6 x the shorter side, resized to the crop size)
ZOOM = {"celeba": 1 / 0.6, "div2k": 2.5, "coco": 1.25}
QUALITIES = (90, 70, 50)
CACHE_NAME = "latent-tables-cache.json"
#: part of every cache key: raise it when a change to the code changes what a row measures
MEASURE_VERSION = 1
TABLE4_ROWS = ("FNNS", "FNNS-jpg90", "FNNS-JPG90_TRAIN", "LISO", "LISO-jpg90")
#: the editing and FNNS settings of `latent tables` unless told otherwise (tuned at 256 px: latent/defaults.py)
TABLE_EDIT = EditConfig(**D.TABLES_EDIT)  # type: ignore[arg-type]
TABLE_FNNS = FnnsConfig(**D.TABLES_FNNS)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------- photo sets


@dataclass
class Cover:
    """One crop of a stand-in set: the image (1 x 3 x S x S in [0, 1], 8-bit levels) and where it came from."""

    set: str
    index: int
    photo: str
    box: tuple[int, int, int]  # x, y, side in the scaled photo
    scale: float  # scaled size / stored size
    face: bool
    image: torch.Tensor = field(repr=False)

    def sha(self) -> str:
        return hashlib.sha256(_u8(self.image).tobytes()).hexdigest()[:16]

    def info(self) -> dict:
        return {"index": self.index, "photo": self.photo, "box": list(self.box), "scale": round(self.scale, 4),
                "face": self.face, "sha": self.sha()}


def _load(path: Path):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def largest_face(img) -> tuple[float, float] | None:
    """Centre (x, y), in ``img``'s pixels, of the largest frontal face that scikit-image's LBP cascade finds in a
    PIL image (searched at <= 768 px), or None."""
    from skimage import data
    from skimage.feature import Cascade

    s = min(1.0, 768.0 / max(img.size))
    small = img.convert("L").resize((max(1, round(img.width * s)), max(1, round(img.height * s))))
    found = Cascade(data.lbp_frontal_face_cascade_filename()).detect_multi_scale(
        img=np.asarray(small, dtype=np.float64) / 255.0, scale_factor=1.2, step_ratio=1, min_size=(40, 40),
        max_size=(500, 500), min_neighbor_number=6)
    if not found:
        return None
    d = max(found, key=lambda f: f["width"] * f["height"])
    return (d["c"] + d["width"] / 2) / s, (d["r"] + d["height"] / 2) / s


def set_photos(data: str | Path, name: str, size: int) -> list[Path]:
    """The val photos of stand-in set ``name`` (sorted), or a one-line error naming the rule."""
    from PIL import Image

    from robusthide.training.data import list_images

    if name not in SETS:
        raise RobustHideError(f"unknown photo set {name!r} (sets: {', '.join(SETS)})")
    out = []
    for p in list_images(data, "val"):
        with Image.open(p) as im:
            short = min(im.size)
        big = short >= DIV2K_MIN_SIDE
        if (name == "celeba" or (name == "div2k") == big) and short >= ZOOM[name] * size:  # no crop is upscaled
            out.append(p)
    if not out:
        rule = {"div2k": f"shorter side >= {DIV2K_MIN_SIDE} px", "coco": f"shorter side < {DIV2K_MIN_SIDE} px",
                "celeba": "any"}[name]
        raise RobustHideError(f"no photo of the {name} set ({rule}, and >= {ZOOM[name]:.3g} x --size = "
                              f"{ZOOM[name] * size:.0f} px) in the val split of {data}")
    return out


def covers(data: str | Path, name: str, n: int, size: int, seed: int = 0) -> list[Cover]:
    """The first ``n`` crops of stand-in set ``name`` at ``size`` px (see the module docstring)."""
    from PIL import Image

    if n < 1 or size < 16:
        raise RobustHideError(f"need n >= 1 and size >= 16, got n={n}, size={size}")
    photos = set_photos(data, name, size)
    order = np.random.default_rng([seed, SETS.index(name)]).permutation(len(photos))
    loaded: dict[int, tuple] = {}
    out = []
    for i in range(n):
        k = int(order[i % len(photos)])
        if k not in loaded:
            im = _load(photos[k])
            loaded[k] = (im, largest_face(im) if name == "celeba" else None)
        im, face = loaded[k]
        rng = np.random.default_rng([seed, SETS.index(name), i, 7])
        short = min(im.size)
        if name == "celeba":
            side = round(0.6 * short)
            cx, cy = face if face is not None else (im.width / 2, im.height / 2)
            cx, cy = cx + rng.uniform(-0.1, 0.1) * short, cy + rng.uniform(-0.1, 0.1) * short
            x = int(np.clip(round(cx - side / 2), 0, im.width - side))
            y = int(np.clip(round(cy - side / 2), 0, im.height - side))
            crop = im.crop((x, y, x + side, y + side)).resize((size, size), Image.BICUBIC)
            box, scale = (x, y, side), size / side
        else:
            scale = ZOOM[name] * size / short
            scaled = im.resize((max(size, round(im.width * scale)), max(size, round(im.height * scale))),
                               Image.BICUBIC)
            x = int(rng.integers(0, scaled.width - size + 1))
            y = int(rng.integers(0, scaled.height - size + 1))
            crop = scaled.crop((x, y, x + size, y + size))
            box = (x, y, size)
        t = torch.from_numpy(np.asarray(crop).copy()).permute(2, 0, 1)[None].float().contiguous() / 255.0
        out.append(Cover(name, i, photos[k].name, box, scale, face is not None, t))
    return out


def message(seed: int, index: int, depth: int, size: int) -> torch.Tensor:
    """The Bernoulli(1/2) bits hidden in image ``index`` (1 x depth x size x size), a function of (seed, index)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + index)
    return (torch.rand(1, depth, size, size, generator=g) > 0.5).float()


# ---------------------------------------------------------------------------------------------------- cache


class Cache:
    """Per-(row, image) results in one JSON file, merged under a lock (flock on its folder) and replaced atomically
    on every save, so parallel runs writing to one folder (e.g. Tables 1, 2 and 3) lose nothing."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.entries: dict[str, dict] = self._read()

    def _read(self) -> dict[str, dict]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as e:
            raise RobustHideError(f"{self.path}: unreadable cache ({type(e).__name__}); move it away to start over")\
                from None
        if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
            raise RobustHideError(f"{self.path}: not a latent tables cache; move it away to start over")
        return data["entries"]

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def put(self, new: dict[str, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY)  # the folder is the lock: the file itself is replaced
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.entries = {**self._read(), **new}
            tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
            tmp.write_text(json.dumps({"format": "robusthide-latent-tables-cache/1", "entries": self.entries},
                                      sort_keys=True))
            os.replace(tmp, self.path)
        finally:
            os.close(fd)


def edit_settings(cfg: EditConfig) -> dict:
    """The editing settings a hyperbase row depends on (its cache key and its report): every field but
    ``log_every``, and ``lattice`` only when it is on (so the rows cached before it existed stay valid)."""
    return {k: v for k, v in asdict(cfg).items() if k != "log_every" and not (k == "lattice" and not v)}


def _key(row: str, cover: Cover, seed: int, deps: dict) -> str:
    blob = json.dumps({"row": row, "set": cover.set, "index": cover.index, "cover": cover.sha(), "seed": seed,
                       "version": MEASURE_VERSION, **deps}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


# ----------------------------------------------------------------------------------------------------- rows


@dataclass
class Setup:
    """What the rows need: the fixed decoder, the codecs (label, model), LISO models and the budgets."""

    decoder: torch.nn.Module
    codecs: list[tuple[str, torch.nn.Module]] = field(default_factory=list)
    liso: torch.nn.Module | None = None
    liso_jpeg: torch.nn.Module | None = None
    edit: EditConfig = field(default_factory=lambda: replace(TABLE_EDIT))
    fnns: FnnsConfig = field(default_factory=lambda: replace(TABLE_FNNS))
    liso_iters: int | None = None
    seed: int = 0
    #: lambda5 of each codec = ``edit.lambda5`` x (codec lambda / LAMBDA5_REF_LMBDA): the same message-to-distortion
    #: balance for every rate (lambda1 is the codec's lambda x 255^2); False: ``edit.lambda5`` for all
    scale_lambda5: bool = bool(D.TABLES_SCALE_LAMBDA5)

    def edit_for(self, model: torch.nn.Module) -> EditConfig:
        """The editing settings of one codec (``scale_lambda5``)."""
        if not self.scale_lambda5:
            return self.edit
        ratio = codec_lambda1(model, default=D.LAMBDA5_REF_LMBDA) / (D.LAMBDA5_REF_LMBDA * 255.0**2)
        return replace(self.edit, lambda5=self.edit.lambda5 * ratio)


def _is_elic(model: torch.nn.Module) -> bool:
    from robusthide.latent.elic import ElicLite

    return isinstance(model, ElicLite)


def codec_rows(label: str, model: torch.nn.Module) -> tuple[str, str]:
    """(codec-alone row, code-editing row) names: hyper_L / hyperbase_L, or ELIC_L / ELICbase_L."""
    return (f"ELIC_{label}", f"ELICbase_{label}") if _is_elic(model) else (f"hyper_{label}", f"hyperbase_{label}")


def _entry(stego: torch.Tensor, cover: torch.Tensor, acc: float, bpp: float, clean: str) -> dict:
    return {"psnr": float(psnr(stego, cover)), "bpp": float(bpp), "acc": float(acc),
            "scores": sa.analyse(_u8(stego)), "clean": clean}


@dataclass
class Group:
    """Rows computed together for one image; ``deps`` are the settings their results depend on."""

    name: str
    rows: tuple[str, ...]
    deps: dict
    compute: Callable[[Cover, torch.Tensor], dict[str, dict]]


def _saved(prefix: str, stego: torch.Tensor, cover: torch.Tensor, t: torch.Tensor, dec, fp16: bool) -> dict:
    """The float stego and its saved forms (fp16, PNG, JPEG Q), each read by ``dec``."""
    from robusthide.codecs import get_codec

    rows = {prefix: _entry(stego, cover, _acc(dec, stego, t), 96.0, "cover")}
    if fp16:
        h = stego.half().float()
        rows[f"{prefix}-fp16"] = _entry(h, cover, _acc(dec, h, t), 48.0, "cover")
    for spec, name, clean in [("png", f"{prefix}-png", "cover")] + [
            (f"jpeg:q={q}", f"{prefix}-jpg{q}", f"cover-jpg{q}") for q in QUALITIES]:
        r = get_codec(spec)(stego)
        rows[name] = _entry(r.images, cover, _acc(dec, r.images, t), r.bpp()[0], clean)
    return rows


def groups(s: Setup, fnns: bool = True, train: bool = True, codec: bool = True, liso: bool = True) -> list[Group]:
    """The row groups of a full table for ``s`` (those whose models are given)."""
    from robusthide.codecs import get_codec

    dec, dec_id = s.decoder, s.decoder.decoder_id()
    fcfg = s.fnns
    out = []

    def clean(c: Cover, t: torch.Tensor) -> dict:
        rows = {"cover": {"scores": sa.analyse(_u8(c.image))}}
        for q in QUALITIES:
            r = get_codec(f"jpeg:q={q}")(c.image)
            rows[f"cover-jpg{q}"] = {"scores": sa.analyse(_u8(r.images)), "bpp": r.bpp()[0],
                                     "psnr": float(psnr(r.images, c.image))}
        return rows

    out.append(Group("clean", ("cover",) + tuple(f"cover-jpg{q}" for q in QUALITIES), {}, clean))
    if fnns:
        out.append(Group("fnns", ("FNNS", "FNNS-fp16", "FNNS-png") + tuple(f"FNNS-jpg{q}" for q in QUALITIES),
                         {"decoder": dec_id, "fnns": asdict(fcfg)},
                         lambda c, t: _saved("FNNS", fnns_embed(dec, c.image, t, fcfg), c.image, t, dec, True)))
    if train:
        for q in QUALITIES:
            qcfg = replace(s.fnns, jpeg_train=q)

            def tr(c: Cover, t: torch.Tensor, q: int = q, qcfg: FnnsConfig = qcfg) -> dict:
                r = get_codec(f"jpeg:q={q}")(fnns_embed(dec, c.image, t, qcfg))
                return {f"FNNS-JPG{q}_TRAIN": _entry(r.images, c.image, _acc(dec, r.images, t), r.bpp()[0],
                                                     f"cover-jpg{q}")}

            out.append(Group(f"fnns-train{q}", (f"FNNS-JPG{q}_TRAIN",), {"decoder": dec_id, "fnns": asdict(qcfg)}, tr))
    if codec:
        for label, m in s.codecs:
            alone, edited = codec_rows(label, m)
            mcfg = s.edit_for(m)
            ecfg = edit_settings(mcfg)

            def ed(c: Cover, t: torch.Tensor, m=m, alone: str = alone, edited: str = edited,
                   mcfg: EditConfig = mcfg) -> dict:
                size = c.image.shape[-1]
                with torch.no_grad():
                    y0 = m.g_a(pad(c.image))
                img0, acc0, bpp0 = _coded(m, dec, y0, t, size)
                t0 = time.process_time()
                res = edit_latent(m, dec, c.image, t, mcfg)
                edit_cpu = time.process_time() - t0
                img1, acc1, bpp1 = _coded(m, dec, res.y, t, size)
                return {alone: _entry(img0, c.image, acc0, bpp0, "cover"),
                        edited: {**_entry(img1, c.image, acc1, bpp1, alone), "edit_cpu_s": edit_cpu,
                                 "iters": mcfg.iters, "lambda5": mcfg.lambda5}}

            if any(alone in g.rows for g in out):
                raise RobustHideError(f"two codecs give the rows {alone} / {edited}: label them differently"
                                      " (--codec LABEL=WEIGHTS)")
            out.append(Group(f"codec-{alone}", (alone, edited),
                             {"decoder": dec_id, "codec": m.model_id(), "edit": ecfg}, ed))
    if liso and s.liso is not None:
        lm = s.liso
        out.append(Group("liso", ("LISO", "LISO-png") + tuple(f"LISO-jpg{q}" for q in QUALITIES),
                         {"liso": lm.model_id(), "iters": s.liso_iters},
                         lambda c, t: _saved("LISO", lm.embed(c.image, t, s.liso_iters), c.image, t, lm.decoder,
                                             False)))
    if liso and s.liso_jpeg is not None:
        jm = s.liso_jpeg
        q = int(jm.jpeg) if jm.jpeg is not None else 90

        def lj(c: Cover, t: torch.Tensor) -> dict:
            r = get_codec(f"jpeg:q={q}")(jm.embed(c.image, t, s.liso_iters))
            return {"LISO-JPEG": _entry(r.images, c.image, _acc(jm.decoder, r.images, t), r.bpp()[0],
                                        f"cover-jpg{q}")}

        out.append(Group("liso-jpeg", ("LISO-JPEG",), {"liso": jm.model_id(), "iters": s.liso_iters, "q": q}, lj))
    return out


def _table4_groups(gs: list[Group]) -> list[Group]:
    keep = {"clean", "fnns", "fnns-train90", "liso"}
    return [g for g in gs if g.name in keep or g.name.startswith("codec-")]


# -------------------------------------------------------------------------------------------------- running


def _aggregate(entries: list[dict], cleans: list[dict]) -> dict:
    acc, bpp = float(np.mean([e["acc"] for e in entries])), float(np.mean([e["bpp"] for e in entries]))
    rs = rsbpp(accuracy=acc, bits_per_pixel=1.0)
    st = [sa.flags(e["scores"]) for e in entries]
    cl = [sa.flags(e["scores"]) for e in cleans]
    det = {k: float(np.mean([f[k] for f in st])) for k in sa.THRESHOLDS}
    bal = {k: 0.5 * (det[k] + 1.0 - float(np.mean([f[k] for f in cl]))) for k in sa.THRESHOLDS}
    out = {"n": len(entries), "psnr": float(np.mean([e["psnr"] for e in entries])), "bpp": bpp, "accuracy": acc,
           "error_rate": 1.0 - acc, "rsbpp": rs, "rsbpp_rate": rsbpp_rate(rs, bpp), "detected": det,
           "balanced_accuracy": bal, "cpu_s": float(np.mean([e.get("cpu_s", 0.0) for e in entries]))}
    if "edit_cpu_s" in entries[0]:
        out["edit_cpu_s"] = float(np.mean([e["edit_cpu_s"] for e in entries]))
    return out


def run_set(name: str, s: Setup, data: str | Path, n: int, size: int, cache: Cache, table4: bool = False,
            methods: dict[str, bool] | None = None, progress: bool = True) -> dict:
    """Every row of set ``name`` on its first ``n`` crops (computing what the cache lacks); the aggregate rows."""
    from tqdm import tqdm

    cs = covers(data, name, n, size, s.seed)
    gs = groups(s, **(methods or {}))
    if table4:
        gs = _table4_groups(gs)
    per_row: dict[str, list[dict]] = {}
    todo = []
    for c in cs:
        for g in gs:
            keys = {r: _key(r, c, s.seed, g.deps) for r in g.rows}
            if any(cache.get(k) is None for k in keys.values()):
                todo.append((c, g, keys))
    bar = tqdm(total=len(cs) * len(gs), initial=len(cs) * len(gs) - len(todo), disable=not progress,
               desc=f"{name} {size}px", unit="row-img", dynamic_ncols=True, leave=False)
    for c, g, keys in todo:
        t = message(s.seed, c.index, s.decoder.data_depth, size)
        t0 = time.process_time()
        rows = g.compute(c, t)
        cpu = time.process_time() - t0
        cache.put({keys[r]: {**v, "cpu_s": cpu, "row": r, "set": name, "index": c.index, "group": g.name}
                   for r, v in rows.items() if r in keys})
        bar.update(1)
    bar.close()
    for c in cs:
        for g in gs:
            for r in g.rows:
                per_row.setdefault(r, []).append(cache.get(_key(r, c, s.seed, g.deps)) or {})
    rows = {}
    for r, es in per_row.items():
        if r.startswith("cover"):
            continue
        cleans = [per_row[e["clean"]][i] for i, e in enumerate(es)]
        rows[r] = {"method": r, **_aggregate(es, cleans)}
    photos = sorted({c.photo for c in cs})
    return {"set": name, "n": n, "size": size, "photos": photos, "faces": sum(c.face for c in cs), "_covers": cs,
            "images": [c.info() for c in cs], "rows": rows,
            "groups_cpu_s": {g.name: float(np.mean([per_row[g.rows[0]][i].get("cpu_s", 0.0) for i in range(len(cs))]))
                             for g in gs}}


def contact_sheet(sets: list[list[Cover]], path: Path, per_row: int = 16, thumb: int = 128) -> None:
    """One row per set: its first ``per_row`` crops, ``thumb`` px each (what the stand-ins look like)."""
    from PIL import Image

    sheet = Image.new("RGB", (per_row * thumb, len(sets) * thumb), "white")
    for r, cs in enumerate(sets):
        for i, c in enumerate(cs[:per_row]):
            sheet.paste(Image.fromarray(_u8(c.image)).resize((thumb, thumb), Image.BICUBIC), (i * thumb, r * thumb))
    sheet.save(path)


def run(
    table: int, s: Setup, data: str | Path, out_dir: str | Path, n: int = 32, size: int = 256,
    methods: dict[str, bool] | None = None, sets: tuple[str, ...] | None = None, progress: bool = True,
    settings: dict | None = None, command: str = "",
) -> dict:
    """Table ``table`` (1-4) on ``n`` crops of ``size`` px per set; writes ``out_dir``/latent-tableK.{md,json} and
    keeps every (row, image) result in ``out_dir``/latent-tables-cache.json (resumable)."""
    if table not in (1, 2, 3, 4):
        raise RobustHideError(f"--table must be 1, 2, 3 or 4, got {table}")
    if n < 1 or size < 16:
        raise RobustHideError(f"need --n >= 1 and --size >= 16, got {n} and {size}")
    if size % 16:
        raise RobustHideError(f"--size must be a multiple of 16 (JPEG blocks, codec stride), got {size}")
    names = {1: ("celeba",), 2: ("div2k",), 3: ("coco",), 4: SETS}[table]
    if sets:
        bad = [x for x in sets if x not in names]
        if bad:
            raise RobustHideError(f"--sets {','.join(bad)}: Table {table} covers {', '.join(names)}")
        names = tuple(x for x in names if x in sets)
    out_dir = Path(out_dir)
    cache = Cache(out_dir / CACHE_NAME)
    t0, c0 = time.time(), time.process_time()
    done = []
    for name in names:
        st = run_set(name, s, data, n, size, cache, table4=table == 4, methods=methods, progress=progress)
        rows = st["rows"]
        if table == 4:
            st["rows"] = {m: v for m, v in rows.items() if m in TABLE4_ROWS or m.startswith(("hyperbase", "ELICbase"))}
            paper: dict = P.TABLE4[name]
        else:
            paper = P.PAPER_TABLES[name]
        st["missing"] = [list(x) for x in missing_rows(st["rows"], paper)
                         if not (table == 4 and x[0] in ("hyperbase_8", "ELICbase_6")
                                 and any(m.startswith(x[0].split("_")[0]) for m in st["rows"]))]
        done.append(st)
    result = {
        "table": table, "sets": done,
        "paper": {x: (P.TABLE4[x] if table == 4 else P.PAPER_TABLES[x]) for x in names},
        "settings": {**(settings or {}), "n": n, "size": size, "seed": s.seed, "data": str(data),
                     "fnns_steps": s.fnns.steps, "fnns": asdict(s.fnns), "liso_iters": s.liso_iters,
                     "decoder_id": s.decoder.decoder_id(), "scale_lambda5": s.scale_lambda5,
                     "edit": edit_settings(s.edit),
                     "seconds": round(time.time() - t0, 1), "computed_cpu_s": round(time.process_time() - c0, 1),
                     "command": command},
    }
    result["settings"].setdefault("decoder", "?")
    result["settings"].setdefault("liso", "")
    result["settings"].setdefault("liso_jpeg", "")
    result["settings"].setdefault("codecs", [{"label": lab, "path": "?", "N": m.N, "M": m.M} for lab, m in s.codecs])
    base = out_dir / f"latent-table{table}"
    sheets = [st.pop("_covers") for st in done]
    write_results(result, base, table_markdown(result, base.with_suffix(".md")))
    contact_sheet(sheets, base.with_suffix(".png"))
    return result
