"""Free training photographs from Debian packages, fetched without installing anything.

``apt-get download`` fetches each package, ``dpkg -x`` unpacks it into a cache, and the photographs
(picked by name: the packages mix photos with illustrations) are copied to ``DEST/train`` with the
package versions (``SOURCES.txt``), each package's copyright file and ``SHA256SUMS``. The photos of
gcompris-qt-data live inside Qt resource bundles (``.rcc``): every entry there is a big-endian u32
size followed by the raw bytes, and images are stored uncompressed, so they are found by their magic
bytes. The result is compared with the checksums shipped in ``photos.sha256.txt``.

Users on other systems point the training and evaluation commands at any folder of images instead.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

from PIL import Image

from robusthide import RobustHideError

PACKAGES = ("mate-backgrounds", "plasma-workspace-wallpapers", "tuxpaint-data", "forensics-samples-files",
            "gcompris-qt-data", "libjxl-testdata")
PLASMA = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
          "OneStandsOut", "Path", "summer_1am")
RCC_BUNDLES = ("erase", "explore_monuments", "explore_world_animals", "explore_farm_animals", "explore_world_music",
               "clickgame")
CHECKSUMS = Path(__file__).with_name("photos.sha256.txt")
_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
_MAGIC = re.compile(rb"\xff\xd8\xff|\x89PNG\r\n\x1a\n|RIFF....WEBP", re.S)


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except FileNotFoundError as e:
        raise RobustHideError(f"{cmd[0]} not found: `robusthide data photos` needs a Debian-like system "
                              "(or point --data at any folder of images)") from e
    except subprocess.CalledProcessError as e:
        msg = (e.stderr or b"").decode(errors="replace").strip().splitlines()
        raise RobustHideError(f"{' '.join(cmd[:2])} failed: {msg[-1] if msg else e.returncode}") from e


def fetch_packages(cache: Path) -> dict[str, Path]:
    """Download and unpack each package once into ``cache``; return package -> unpacked root."""
    debs, roots = cache / "debs", cache / "root"
    debs.mkdir(parents=True, exist_ok=True)
    roots.mkdir(parents=True, exist_ok=True)
    out = {}
    for p in PACKAGES:
        found = sorted(debs.glob(f"{p}_*.deb"))
        if not found:
            if not any(Path("/var/lib/apt/lists").glob("*_Packages")):
                _run(["apt-get", "update", "-qq"])
            _run(["apt-get", "download", "-q", p], cwd=debs)
            found = sorted(debs.glob(f"{p}_*.deb"))
        root = roots / p
        if not root.is_dir():
            tmp = roots / f".{p}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            _run(["dpkg", "-x", str(found[-1]), str(tmp)])
            tmp.rename(root)
        out[p] = root
    return out


def rcc_images(data: bytes, stem: str, min_side: int = 256) -> list[tuple[str, bytes]]:
    """(name, bytes) of the distinct RGB/L/RGBA images of at least ``min_side`` px in a Qt .rcc bundle."""
    seen, kept = set(), []
    for i, m in enumerate(_MAGIC.finditer(data)):
        o = m.start()
        size = int.from_bytes(data[o - 4:o], "big") if o >= 4 else 0
        if not 0 < size <= len(data) - o:
            continue
        blob = data[o:o + size]
        try:
            with Image.open(io.BytesIO(blob)) as im:
                im.load()
                fmt, mode, side = im.format, im.mode, min(im.size)
        except Exception:  # noqa: BLE001 - a magic number inside other data, not an image
            continue
        digest = hashlib.sha256(blob).hexdigest()
        if side < min_side or mode not in ("RGB", "L", "RGBA") or digest in seen:
            continue
        seen.add(digest)
        kept.append((f"gcompris__{stem}_{i:03d}.{_EXT[fmt]}", blob))
    return kept


def _copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)


def materialize_photos(dest: str | os.PathLike, cache: str | os.PathLike | None = None,
                       verify: bool = True) -> dict:
    """Fill ``dest/train`` with the photographs; returns counts and the checksum comparison."""
    dest = Path(dest)
    cache = Path(cache) if cache else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / \
        "robusthide" / "photo-debs"
    train = dest / "train"
    train.mkdir(parents=True, exist_ok=True)
    r = fetch_packages(cache)
    for f in sorted((r["mate-backgrounds"] / "usr/share/backgrounds/mate/nature").glob("*.jpg")):
        _copy(f, train / f"mate__{f.name}")
    for w in PLASMA:
        d = r["plasma-workspace-wallpapers"] / f"usr/share/wallpapers/{w}/contents/images"
        biggest = max(d.glob("*.jpg"), key=lambda p: p.stat().st_size)
        _copy(biggest, train / f"plasma__{w}.jpg")
    for f in sorted((r["tuxpaint-data"] / "usr/share/tuxpaint/templates").glob("*.jpg")):
        _copy(f, train / f"tuxpaint__{f.name}")
    for f in sorted((r["forensics-samples-files"] / "usr/share/forensics-samples/original-files").glob("pic*/IMG*")):
        _copy(f, train / f"forensics__{f.name}")
    jxl = r["libjxl-testdata"] / "usr/share/libjxl-testdata"
    for f in [jxl / "jxl/flower/flower.png", *sorted((jxl / "external/wesaturate/500px").glob("*_srgb8.png"))]:
        _copy(f, train / f"jxl__{f.name}")
    rcc = r["gcompris-qt-data"] / "usr/share/gcompris-qt/rcc"
    for stem in RCC_BUNDLES:
        for name, blob in rcc_images((rcc / f"{stem}.rcc").read_bytes(), stem):
            (train / name).write_bytes(blob)
    sources = []
    for p, root in r.items():
        deb = sorted((cache / "debs").glob(f"{p}_*.deb"))[-1]
        sources.append(f"{p} {deb.name.split('_')[1].replace('%3a', ':')}")
        shutil.copyfile(root / f"usr/share/doc/{p}/copyright", dest / f"COPYRIGHT.{p}")
    (dest / "SOURCES.txt").write_text("\n".join(sources) + "\n")
    sums = checksums(train)
    (dest / "SHA256SUMS").write_text("".join(f"{h}  train/{n}\n" for n, h in sorted(sums.items())))
    out: dict = {"photos": len(sums), "dest": str(dest)}
    if verify and CHECKSUMS.is_file():
        want = parse_checksums(CHECKSUMS.read_text())
        out["verified"] = all(sums.get(n) == h for n, h in want.items())
        out["missing"] = sorted(n for n in want if n not in sums)
        out["changed"] = sorted(n for n, h in want.items() if n in sums and sums[n] != h)
    return out


def checksums(folder: Path) -> dict[str, str]:
    """File name -> SHA-256 hex digest for every file of ``folder``."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def parse_checksums(text: str) -> dict[str, str]:
    """Parse ``sha256sum`` output (``<hex>  [train/]<name>``) into name -> digest."""
    out = {}
    for line in text.splitlines():
        if line.strip():
            h, name = line.split(maxsplit=1)
            out[Path(name.strip()).name] = h
    return out
