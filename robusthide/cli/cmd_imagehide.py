"""``robusthide hide-image|reveal-image`` and ``robusthide imagehide train|evaluate|export``: hiding whole
images in images (paper 003; paper 000 §4). See docs/imagehiding.md."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from robusthide import RobustHideError

#: Output formats of the container: lossless by extension, or JPEG / WebP at ``--quality``.
LOSSY_EXTS = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def _hider(a: argparse.Namespace, n_secrets: int = 1):
    from robusthide.imagehiding import ImageHider
    from robusthide.imagehiding.api import default_model

    if a.model is None:
        a.model = default_model(n_secrets)
    return ImageHider.from_file(a.model, device=getattr(a, "device", None))


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _write_container(path: Path, arr, inputs: list[Path], quality: int) -> None:
    from robusthide.io.images import LOSSLESS_EXTENSIONS, write_image
    from robusthide.training.checkpoint import atomic_write

    for src in inputs:
        if _same(path, src):
            raise RobustHideError(f"refusing to overwrite the input file {src}")
    ext = path.suffix.lower()
    if ext in LOSSLESS_EXTENSIONS:
        write_image(path, arr)
        return
    if ext not in LOSSY_EXTS:
        raise RobustHideError(f"{path}: unsupported container extension '{path.suffix}' "
                              f"(use .png, .bmp, .tif, .jpg or .webp)")
    if path.is_dir():
        raise RobustHideError(f"{path} is a folder")
    from PIL import Image

    def save(p: Path) -> None:
        Image.fromarray(arr).save(p, format=LOSSY_EXTS[ext], quality=quality)

    try:
        atomic_write(path, save)
    except OSError as e:
        raise RobustHideError(f"cannot write {path}: {e.strerror or e}") from None


def _refine_config(a: argparse.Namespace):
    from robusthide.imagehiding.refine import HideRefineConfig

    if not a.refine:
        return None
    return HideRefineConfig(steps=a.refine, lr=a.refine_lr, target_psnr=a.target_psnr,
                            attack=tuple(a.refine_attack or ()) or None)


def _hide(a: argparse.Namespace) -> int:
    from robusthide.io.images import read_image_rgb
    from robusthide.metrics import psnr

    if not 1 <= a.quality <= 100:
        raise RobustHideError(f"--quality must be 1..100, got {a.quality}")
    cover_p, secret_ps, out = Path(a.cover), [Path(s) for s in a.secrets], Path(a.output)
    cover = read_image_rgb(cover_p)
    secrets = [read_image_rgb(p) for p in secret_ps]
    h = _hider(a, len(secrets))
    if len(secrets) != h.n_secrets:
        raise RobustHideError(f"the model {a.model} hides exactly {h.n_secrets} secret image(s), "
                              f"got {len(secrets)}")
    container = h.hide(cover, secrets, refine=_refine_config(a))
    _write_container(out, container, [cover_p, *secret_ps], a.quality)
    saved = read_image_rgb(out)  # the PSNR of the file as written (after JPEG / WebP), not before encoding
    row = {"cover": str(cover_p), "secrets": [str(p) for p in secret_ps], "output": str(out),
           "size": [int(cover.shape[1]), int(cover.shape[0])], "psnr": round(psnr(cover, saved), 2)}
    hh, ww = container.shape[:2] if h.any_size else (h.size, h.size)  # fixed-size models hide at their size
    print(json.dumps(row) if a.json else f"{out}: container PSNR {row['psnr']:.2f} dB "
          f"({h.n_secrets} secret image(s) hidden at {ww} x {hh})")
    return 0


def _reveal(a: argparse.Namespace) -> int:
    from robusthide.io.images import read_image_rgb, write_image

    src, out = Path(a.container), Path(a.output)
    if out.exists() and not out.is_dir():
        raise RobustHideError(f"{out} exists and is not a folder (-o names the output folder)")
    img = read_image_rgb(src)
    if not 1 <= a.secrets <= 3:
        raise RobustHideError(f"--secrets must be 1, 2 or 3, got {a.secrets}")
    h = _hider(a, a.secrets)
    revealed = h.reveal(img)
    paths = []
    for i, s in enumerate(revealed, 1):
        p = out / f"{a.prefix}{i}.png"
        write_image(p, s, overwrite_guard_src=src)
        paths.append(str(p))
    print(json.dumps({"container": str(src), "outputs": paths}) if a.json else
          "\n".join(f"wrote {p} ({s.shape[1]} x {s.shape[0]})" for p, s in zip(paths, revealed)))
    return 0


def _train(a: argparse.Namespace) -> int:
    from robusthide.imagehiding.train import train

    overrides = list(a.set or [])
    if a.name:
        overrides.append(f"name={a.name}")
    last = train(a.config, overrides, resume=a.resume, max_steps=a.max_steps, device=a.device,
                 progress=not a.no_progress)
    if a.json:
        print(json.dumps(last))
    return 0


def _refine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--refine", type=int, default=0, metavar="STEPS",
                   help="optimise the container against the reveal network for STEPS steps (0: off)")
    p.add_argument("--target-psnr", type=float, default=34.0,
                   help="with --refine: the container PSNR kept, in dB at the working size (34)")
    p.add_argument("--refine-attack", action="append", default=None, metavar="SPEC",
                   help="with --refine: also reveal after this attack spec, e.g. 'real(jpeg:q=50)' (repeatable: "
                        "the loss is the mean of the clean and every attacked reveal)")
    p.add_argument("--refine-lr", type=float, default=0.002, metavar="LR",
                   help="with --refine: Adam's step size on the container (0.002)")


_EVAL_FLAGS = (("data", "--data", None), ("split", "--split", "val"), ("n", "--n", 100),
               ("attacks", "--attacks", None), ("cover_size", "--cover-size", None), ("refine", "--refine", 0),
               ("target_psnr", "--target-psnr", 34.0), ("refine_attack", "--refine-attack", None),
               ("refine_lr", "--refine-lr", 0.002),
               ("seed", "--seed", 0), ("out", "--out", None))


def _evaluate(a: argparse.Namespace) -> int:
    from robusthide.cli.command import command_line
    from robusthide.imagehiding.evaluate import DEFAULT_ATTACKS, evaluate, write_report

    attacks = [s.strip() for s in a.attacks.split(",") if s.strip()] if a.attacks else list(DEFAULT_ATTACKS)
    doc = evaluate(a.model, a.data, n=a.n, split=a.split, attacks=attacks, seed=a.seed,
                   cover_size=a.cover_size, progress=not a.json, samples=True, refine=_refine_config(a))
    doc["command"] = command_line(["imagehide", "evaluate", str(a.model)], a, _EVAL_FLAGS, always=("n",))
    out = a.out or f"docs/results/imagehide-{Path(a.model).stem}"
    j, m = write_report(doc, out)
    if a.json:
        print(json.dumps(doc))
    else:
        c = doc["container"]
        print(f"container PSNR {c['psnr']:.2f} dB, SSIM {c['ssim']:.4f}, APD {c['apd']:.2f}")
        for name, r in doc["attacks"].items():
            print(f"  {name:22s} revealed PSNR {r['psnr']:6.2f} dB  SSIM {r['ssim']:.4f}  APD {r['apd']:.2f}")
        print(f"wrote {j} and {m}")
    return 0


_ABLATE_FLAGS = (("variants", "--variants", None), ("steps", "--steps", 1200), ("size", "--size", 32),
                 ("target_psnr", "--target-psnr", 28.0), ("data", "--data", None), ("n", "--n", 50),
                 ("seed", "--seed", 0), ("out", "--out", None))


def _ablate(a: argparse.Namespace) -> int:
    from robusthide.cli.command import command_line
    from robusthide.imagehiding.ablation import VARIANTS, ablate, write_results

    variants = [v.strip() for v in a.variants.split(",") if v.strip()] if a.variants else list(VARIANTS)
    doc = ablate(a.config, variants, steps=a.steps, size=a.size, target_psnr=a.target_psnr, data=a.data, n=a.n,
                 overrides=a.set or [], seed=a.seed, progress=not a.no_progress)
    words = ["imagehide", "ablate", str(a.config), *(w for s in a.set or [] for w in ("--set", s))]
    doc["command"] = command_line(words, a, _ABLATE_FLAGS, always=("steps", "size", "n"))
    out = a.out or f"docs/results/{doc['base']}-table2"
    paths = write_results(doc, out)
    if a.json:
        print(json.dumps(doc))
    else:
        for v, r in doc["variants"].items():
            print(f"{v:15s} container {r['container']['psnr']:6.2f} dB  revealed after {doc['column']} "
                  f"{r['attacks'][doc['column']]['psnr']:6.2f} dB")
        print("wrote " + ", ".join(paths.values()))
    return 0


def _export(a: argparse.Namespace) -> int:
    from robusthide.imagehiding.checkpoint import export_model

    print(f"wrote {export_model(a.run, a.output, a.name, size=a.size, card=a.card)}")
    return 0


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML config (configs/imagehide-003.yaml, configs/imagehide-000.yaml)")
    p.add_argument("--resume", action="store_true", help="continue exactly from the run's last checkpoint")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    p.add_argument("--name", help="run name (folder under the config's out/)")
    p.add_argument("--max-steps", type=int, help="stop at this step (the schedule still uses train.steps)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the last metrics as JSON")


def register(sub: argparse._SubParsersAction) -> None:
    h = sub.add_parser("hide-image", help="hide 1-3 secret images in a cover image (paper 003)")
    h.add_argument("cover", help="cover image (any size; the container keeps it)")
    h.add_argument("secrets", nargs="+", metavar="SECRET", help="secret image(s), resized to the model's size")
    h.add_argument("-o", "--output", required=True, help="container file (.png; or .jpg / .webp at --quality)")
    h.add_argument("--model", default=None,
                   help="exported image-hiding model (.safetensors) or a shipped name (default: the shipped model "
                        "for that number of secrets; robusthide models)")
    h.add_argument("--quality", type=int, default=95, help="JPEG / WebP quality of a lossy container (95)")
    _refine_args(h)
    h.add_argument("--device", default=None, help="cpu (default) or cuda")
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=_hide)
    r = sub.add_parser("reveal-image", help="recover the secret images hidden in a container")
    r.add_argument("container")
    r.add_argument("-o", "--output", required=True, help="output folder (secret_1.png, ...)")
    r.add_argument("--model", default=None,
                   help="exported image-hiding model (.safetensors) or a shipped name (default: the shipped model "
                        "for --secrets)")
    r.add_argument("--secrets", type=int, default=1, help="number of hidden images, to pick the default model (1)")
    r.add_argument("--prefix", default="secret_", help="file name prefix of the revealed images")
    r.add_argument("--device", default=None)
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_reveal)

    g = sub.add_parser("imagehide", help="train, evaluate, export image-hiding models")
    gs = g.add_subparsers(dest="imagehide_command", metavar="ACTION")
    t = gs.add_parser("train", help="train from a YAML config (configs/imagehide-003.yaml, -000.yaml)")
    add_train_arguments(t)
    t.set_defaults(func=_train)
    e = gs.add_parser("evaluate", help="PSNR / SSIM / APD with and without attacks -> OUT.md / OUT.json")
    e.add_argument("model", help="exported model (.safetensors)")
    e.add_argument("--data", required=True, help="folder of photos")
    e.add_argument("--split", default="val", help="val (default), train or all")
    e.add_argument("--n", type=int, default=100, help="number of (cover, secrets) groups")
    e.add_argument("--attacks", default=None, help="comma-separated attack names (default: all)")
    e.add_argument("--cover-size", type=int, default=None, help="cover crop size (default: the model's)")
    _refine_args(e)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", default=None, help="output prefix (default docs/results/imagehide-MODELNAME)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_evaluate)
    b = gs.add_parser("ablate", help="paper 003 Table 2: train and measure each ablation at one budget")
    b.add_argument("config", help="base YAML config (configs/imagehide-003.yaml)")
    b.add_argument("--variants", default=None,
                   help="comma-separated: no-progressive, no-disc, unet, no-simulator, full (default: all)")
    b.add_argument("--steps", type=int, default=1200, help="training steps of every variant (1200)")
    b.add_argument("--size", type=int, default=32, help="working size of every variant (32)")
    b.add_argument("--target-psnr", type=float, default=28.0, help="container PSNR held by the controller (28)")
    b.add_argument("--data", default=None, help="photos to measure on (default: the config's, validation split)")
    b.add_argument("--n", type=int, default=50, help="validation groups per variant (50)")
    b.add_argument("--seed", type=int, default=0, help="evaluation seed")
    b.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a base config value")
    b.add_argument("--out", default=None, help="output prefix (default docs/results/NAME-table2)")
    b.add_argument("--no-progress", action="store_true")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_ablate)

    x = gs.add_parser("export", help="export a run's generator networks for hide-image / reveal-image")
    x.add_argument("run", help="run folder (runs/NAME)")
    x.add_argument("-o", "--output", required=True, help="model file (.safetensors)")
    x.add_argument("--name", default=None)
    x.add_argument("--size", type=int, default=None,
                   help="working size of the exported model (arch hinet only; default: the training size)")
    x.add_argument("--card", default="", help="its model card's file name in robusthide/zoo/cards (zoo models)")
    x.set_defaults(func=_export)
    g.set_defaults(func=lambda a: (g.print_help(), 1)[1])
