"""``robusthide latent rd|train-codec|train-decoder|train-liso|bench|bench-liso|bench-train|iters|tables``: the research
side of paper 004: training the codecs, the steganography decoders and the LISO baselines, the training probes, the
codecs' R-D table, and the paper's tables. Registered under ``robusthide latent`` by
:func:`robusthide.cli.cmd_latent.register`. See docs/latent.md."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robusthide import RobustHideError
from robusthide.cli.cmd_latent import codec_arg, edit_args, edit_cfg, model_args


def _print_row(rec: dict) -> None:
    """A training log row, as one JSON line on stdout."""
    print(json.dumps(rec), flush=True)


#: train-codec's settings without --config: the command's defaults (CODEC_SCHEMA's, except M 192, size 64)
CODEC_CLI_DEFAULTS: dict = {"out": None, "data": "data/photos/train", "steps": 20000, "size": 64, "batch": 8,
                            "seed": 0, "max_side": 512, "log_every": 100, "lmbda": 0.0130, "N": 64, "M": 192,
                            "lr": 1e-4, "quality": "", "checkpoint_every": 500, "arch": "hyperprior", "amp": False}


def codec_settings(a: argparse.Namespace) -> dict:
    """train-codec's settings: :data:`CODEC_CLI_DEFAULTS`, then the keys of ``--config FILE.yaml`` (a flat
    mapping of the same names, e.g. configs/latent/hp-q6.yaml), then the options given on the command line."""
    from robusthide.training.config import read_yaml

    cfg = dict(CODEC_CLI_DEFAULTS)
    if a.config:
        doc = read_yaml(a.config)
        unknown = sorted(set(doc) - set(cfg))
        if unknown:
            raise RobustHideError(f"{a.config}: unknown key {unknown[0]!r} (known: {', '.join(sorted(cfg))})")
        cfg.update(doc)
    cfg.update({k: getattr(a, k) for k in cfg if getattr(a, k, None) is not None})
    if not cfg["out"]:
        raise RobustHideError("give --out (or out: in the --config file)")
    return cfg


def _train_codec(a: argparse.Namespace) -> int:
    from robusthide.latent.train import train_codec

    cfg = codec_settings(a)
    out, data = cfg.pop("out"), cfg.pop("data")
    train_codec(data, out, echo=_print_row, resume=a.resume, init_from=a.init_from, **cfg)
    print(f"wrote {Path(out) / 'codec.safetensors'}")
    return 0


def _train_decoder(a: argparse.Namespace) -> int:
    from robusthide.latent.api import resolve_codec, resolve_decoder
    from robusthide.latent.train import train_decoder

    codec = resolve_codec(a.through_codec) if a.through_codec else None
    init = resolve_decoder(a.init_decoder) if a.init_decoder else None
    train_decoder(a.data, a.out, steps=a.steps, data_depth=a.depth, hidden=a.hidden, size=a.size, batch=a.batch,
                  lr=a.lr, mse_weight=a.mse_weight, target_psnr=a.target_psnr, seed=a.seed, max_side=a.max_side,
                  log_every=a.log_every, checkpoint_every=a.checkpoint_every, resume=a.resume, codec=codec,
                  init_decoder=init,
                  echo=_print_row)
    print(f"wrote {Path(a.out) / 'decoder.safetensors'}")
    return 0


def _train_liso(a: argparse.Namespace) -> int:
    from robusthide.latent.api import resolve_decoder
    from robusthide.latent.liso import Liso, LisoTrainConfig, train_liso

    if a.iters < 1:
        raise RobustHideError("--iters must be >= 1")
    init = None if a.init_decoder == "none" else resolve_decoder(a.init_decoder)
    model = Liso(hidden=a.hidden, data_depth=init.data_depth if init else 1, iters=a.iters, step=a.step,
                 jpeg=a.jpeg, decoder_hidden=init.hidden if init else 32)
    cfg = LisoTrainConfig(steps=a.steps, size=a.size, batch=a.batch, lr=a.lr, gamma=a.gamma,
                          mse_weight=a.mse_weight, seed=a.seed, max_side=a.max_side, log_every=a.log_every)
    train_liso(a.data, a.out, model, cfg, init_decoder=init, echo=_print_row)
    print(f"wrote {Path(a.out) / 'liso.safetensors'}")
    return 0


def _bench_liso(a: argparse.Namespace) -> int:
    from robusthide.latent import bench_liso

    cmd = "robusthide latent " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else ""
    r = bench_liso.run(a.liso, a.liso_jpeg, a.fnns_decoder, a.data, a.out, n=a.n, size=a.size, fnns_steps=a.fnns_steps,
                       liso_iters=a.liso_iters, seed=a.seed, max_side=a.max_side, command=cmd)
    print(f"wrote {Path(a.out).with_suffix('.md')} and .json ({len(r['rows'])} rows)")
    return 0


def _bench_train(a: argparse.Namespace) -> int:
    import torch

    from robusthide.latent import probe

    if a.seconds <= 0 or a.max_wall <= 0 or a.threads < 1:
        raise RobustHideError("--seconds and --max-wall must be > 0, --threads >= 1")
    torch.set_num_threads(a.threads)
    cmd = "robusthide latent " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else ""
    probe.run(a.out, a.data, tuple(a.arch or ["hyperprior", "elic"]), tuple(a.size or [128, 256]), a.seconds,
              a.batch, a.lmbda, a.N, a.M, a.max_side, command=cmd, max_wall=a.max_wall,
              precisions=tuple(a.precision or ["fp32"]))
    print(f"wrote {Path(a.out).with_suffix('.md')} and .json")
    return 0


def _rd(a: argparse.Namespace) -> int:
    from robusthide.latent import rd

    codecs = []
    for spec in a.codec or []:
        label, sep, what = spec.partition("=")
        model = codec_arg(what if sep else spec)
        codecs.append((label if sep else model.meta.get("quality", Path(spec).stem), model))
    cmd = "robusthide latent " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else ""
    rd.run(codecs, a.data, a.out, n=a.n, size=a.size, seed=a.seed, max_side=a.max_side, command=cmd)
    print(f"wrote {Path(a.out).with_suffix('.md')}, .json and .png")
    return 0


def _bench(a: argparse.Namespace) -> int:
    from robusthide.latent import bench
    from robusthide.latent.api import DEFAULT_DECODER, DEFAULT_DECODER_NAME

    dec = a.decoder or (DEFAULT_DECODER_NAME if DEFAULT_DECODER.is_file() else "fnns-r:0")
    cmd = "robusthide latent " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else ""
    try:
        curve = tuple(int(k) for k in a.curve.split(",")) if a.curve else ()
    except ValueError:
        raise RobustHideError(f"--curve takes iteration counts separated by commas (e.g. 100,300,1000), got"
                              f" {a.curve!r}") from None
    r = bench.run(a.codec or [], dec, a.data, a.out, n=a.n, size=a.size, iters=a.iters, fnns_steps=a.fnns_steps,
                  edit=edit_cfg(a), seed=a.seed, max_side=a.max_side, command=cmd, curve=curve)
    print(f"wrote {Path(a.out).with_suffix('.md')} and .json ({len(r['rows'])} rows)")
    return 0


def _iters(a: argparse.Namespace) -> int:
    from robusthide.latent import iters
    from robusthide.latent.api import DEFAULT_DECODER, DEFAULT_DECODER_NAME, resolve_decoder
    from robusthide.training.data import ImageBank

    try:
        at = tuple(int(k) for k in a.at.split(","))
    except ValueError:
        raise RobustHideError(f"--at takes iteration counts separated by commas (e.g. 0,100,300,1000), got"
                              f" {a.at!r}") from None
    if a.n < 1 or a.size < 16:
        raise RobustHideError("--n must be >= 1 and --size >= 16")
    codec = codec_arg(a.codec)
    dec = resolve_decoder(a.decoder or (DEFAULT_DECODER_NAME if DEFAULT_DECODER.is_file() else "fnns-r:0"))
    base = edit_cfg(a)
    series = [iters.parse_series(s, base) for s in (a.series or ["paper"])]
    if a.set:  # the crops of a stand-in set of `latent tables` (what the tables' editing settings are tuned on)
        from robusthide.latent import tables

        covers = [c.image for c in tables.covers(a.data, a.set, a.n, a.size, a.seed)]
    else:
        bank = ImageBank(a.data, split="val", max_side=a.max_side, min_side=a.size)
        covers = [c[None] for c in bank.fixed_set(a.n, a.size, seed=1234 + a.seed)]
    cmd = "robusthide latent " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else ""
    label = a.codec or codec.meta.get("quality", "?")
    iters.run((label, codec), dec, covers, series, at, a.out, seed=a.seed, command=cmd,
              settings={"data": a.data, "decoder": a.decoder or "default"})
    print(f"wrote {Path(a.out).with_suffix('.md')}, .json and .png")
    return 0


def _tables(a: argparse.Namespace) -> int:
    import torch

    from robusthide.latent import tables
    from robusthide.latent.api import DEFAULT_DECODER, DEFAULT_DECODER_NAME, resolve_decoder
    from robusthide.latent.liso import load_liso

    if a.threads < 1 or a.fnns_steps < 1:
        raise RobustHideError("--threads and --fnns-steps must be >= 1")
    if not (a.fnns_eps > 0 and a.fnns_lr > 0):
        raise RobustHideError("--fnns-eps and --fnns-lr must be > 0")
    torch.set_num_threads(a.threads)
    known = {"fnns", "train", "codec", "liso"}
    methods = {m.strip() for m in a.methods.split(",") if m.strip()}
    if not methods or methods - known:
        raise RobustHideError(f"--methods takes a comma list of {', '.join(sorted(known))}, got {a.methods!r}")
    sets = tuple(x.strip() for x in a.sets.split(",") if x.strip()) if a.sets else None
    codecs, info = [], []
    for spec in a.codec or []:
        label, sep, what = spec.partition("=")
        model = codec_arg(what if sep else spec)
        codecs.append((label if sep else model.meta.get("quality", Path(spec).stem), model))
        info.append({"label": codecs[-1][0], "path": what if sep else spec, "N": model.N, "M": model.M})
    if not a.codec and "codec" in methods:  # the zoo's default codec
        model = codec_arg(None)
        codecs.append((model.meta.get("quality", "default"), model))
        info.append({"label": codecs[-1][0], "path": "zoo default", "N": model.N, "M": model.M})
    dec_spec = a.decoder or (DEFAULT_DECODER_NAME if DEFAULT_DECODER.is_file() else "fnns-r:0")
    from robusthide.latent.fnns import FnnsConfig

    fnns = FnnsConfig(steps=a.fnns_steps, lr=a.fnns_lr, eps=a.fnns_eps)
    setup = tables.Setup(resolve_decoder(dec_spec), codecs, load_liso(a.liso) if a.liso else None,
                         load_liso(a.liso_jpeg) if a.liso_jpeg else None, edit_cfg(a), fnns, a.liso_iters,
                         a.seed, scale_lambda5=a.scale_lambda5)
    setup.edit.seed = a.seed
    cmd = "robusthide latent " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else ""
    r = tables.run(a.table, setup, a.data, a.out_dir, n=a.n, size=a.size,
                   methods={m: m in methods for m in sorted(known)}, sets=sets, progress=not (a.no_progress or a.json),
                   settings={"decoder": dec_spec, "liso": a.liso or "", "liso_jpeg": a.liso_jpeg or "", "codecs": info},
                   command=cmd)
    path = Path(a.out_dir) / f"latent-table{a.table}"
    if a.json:
        print(json.dumps(r, indent=1))
    else:
        n_rows = sum(len(st["rows"]) for st in r["sets"])
        print(f"wrote {path.with_suffix('.md')} and .json ({n_rows} rows; {r['settings']['computed_cpu_s']:.0f} CPU s"
              f" computed, the rest from {Path(a.out_dir) / tables.CACHE_NAME})")
    return 0


def register(ls: argparse._SubParsersAction) -> None:
    """The research subcommands, on the ``robusthide latent`` subparsers ``ls``."""
    from robusthide.latent import defaults as TD

    def data_args(q: argparse.ArgumentParser, steps: int, size: int, out_required: bool = True) -> None:
        q.add_argument("--out", required=out_required, help="output folder")
        q.add_argument("--data", default="data/photos/train", help="photo folder (train split by name hash)")
        q.add_argument("--steps", type=int, default=steps)
        q.add_argument("--size", type=int, default=size, help="crop size in px")
        q.add_argument("--batch", type=int, default=8)
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--max-side", type=int, default=512, help="photos are downscaled to this shorter side")
        q.add_argument("--log-every", type=int, default=100)

    tc = ls.add_parser("train-codec", help="train a learned codec (CompressAI's R-D loss)")
    data_args(tc, 20000, 64, out_required=False)
    tc.add_argument("--config", help="YAML file of these settings (out, data, steps, lmbda, N, M, size, batch, lr,"
                                     " arch, amp, ...; e.g. configs/latent/hp-q6.yaml); options given here win")
    tc.add_argument("--lmbda", type=float, help="R-D lambda (CompressAI q1..8: 0.0018..0.18; default 0.0130)")
    tc.add_argument("--N", type=int, help="filters (default 64; CompressAI: 128)")
    tc.add_argument("--M", type=int, help="latent channels (default 192; CompressAI: 192)")
    tc.add_argument("--lr", type=float, help="Adam learning rate (default 1e-4)")
    tc.add_argument("--quality", help="label stored in the weights (e.g. 4)")
    tc.add_argument("--checkpoint-every", type=int,
                    help="write OUT/latest.safetensors + latest.json every K steps (0: never; default 500)")
    tc.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                    help="bf16 autocast for the transforms (likelihoods stay float32); used where the CPU has"
                         " native bf16 (AVX512-BF16 or AMX), else float32 (default: off)")
    tc.add_argument("--resume", action="store_true",
                    help="continue from OUT's checkpoint up to --steps (train in resumable stretches)")
    tc.add_argument("--init-from", default=None,
                    help="start a new run from these weights (codec file or run folder), e.g. at a larger --size")
    tc.add_argument("--arch", choices=["hyperprior", "elic"],
                    help="scale hyperprior (default) or the ELIC-style codec (uneven groups, space-channel context)")
    # every setting may come from --config: None marks "not given here" (codec_settings fills the defaults)
    tc.set_defaults(func=_train_codec, out=None, data=None, steps=None, size=None, batch=None, seed=None,
                    max_side=None, log_every=None)

    td = ls.add_parser("train-decoder", help="train the FNNS steganography decoder (SteganoGAN BasicDecoder)")
    data_args(td, 3000, 64)
    td.add_argument("--depth", type=int, default=1, help="bits per pixel D")
    td.add_argument("--hidden", type=int, default=32)
    td.add_argument("--lr", type=float, default=1e-3)
    td.add_argument("--mse-weight", type=float, default=10.0, help="weight of MSE(stego, cover) (default 10)")
    td.add_argument("--target-psnr", type=float, default=0.0,
                    help="hold the stego's PSNR here by moving the MSE weight (0: a fixed --mse-weight)")
    td.add_argument("--through-codec", default=None, metavar="CODEC",
                    help="a frozen codec (zoo name or weights): the decoder reads g_s(round(g_a(stego))), what "
                         "code editing can produce (ours; crops a multiple of 64 px)")
    td.add_argument("--init-decoder", default=None, metavar="DECODER",
                    help="start the decoder from these weights (a decoder or LISO file, a zoo name)")
    td.add_argument("--checkpoint-every", type=int, default=0,
                    help="write OUT/latest.safetensors + latest.json every K steps (0: never)")
    td.add_argument("--resume", action="store_true", help="continue from OUT's checkpoint")
    td.set_defaults(func=_train_decoder)

    tl = ls.add_parser("train-liso", help="train a LISO (or LISO-JPEG) learned optimiser and its decoder")
    data_args(tl, 300, 64)
    tl.add_argument("--jpeg", type=int, default=None, help="LISO-JPEG: real JPEG at this quality in the loop")
    tl.add_argument("--iters", type=int, default=6, help="learned-optimiser steps (default 6)")
    tl.add_argument("--step", type=float, default=0.05, help="largest pixel change per step (default 0.05)")
    tl.add_argument("--hidden", type=int, default=32)
    tl.add_argument("--lr", type=float, default=1e-3)
    tl.add_argument("--gamma", type=float, default=0.8, help="weight decay of earlier steps in the loss")
    tl.add_argument("--mse-weight", type=float, default=10.0)
    tl.add_argument("--init-decoder", default="latent-fnns-decoder",
                    help="decoder to start from (default: the zoo's FNNS decoder, latent-fnns-decoder; 'none': random)")
    tl.set_defaults(func=_train_liso)

    bl = ls.add_parser("bench-liso", help="LISO and LISO-JPEG vs FNNS on the bench's images and bits")
    bl.add_argument("--out", required=True, help="output path without extension (writes .md and .json)")
    bl.add_argument("--liso", required=True, help="LISO weights (from train-liso)")
    bl.add_argument("--liso-jpeg", help="LISO-JPEG weights (from train-liso --jpeg Q)")
    bl.add_argument("--fnns-decoder", default="latent-fnns-decoder",
                    help="FNNS decoder: file, zoo name or fnns-r:SEED (default: latent-fnns-decoder)")
    bl.add_argument("--data", default="data/photos/train", help="photo folder (its val split is used)")
    bl.add_argument("--n", type=int, default=8, help="number of images")
    bl.add_argument("--size", type=int, default=128, help="crop size in px")
    bl.add_argument("--fnns-steps", type=int, default=30, help="FNNS L-BFGS steps")
    bl.add_argument("--liso-iters", type=int, default=None, help="learned steps at embedding (default: trained)")
    bl.add_argument("--seed", type=int, default=0)
    bl.add_argument("--max-side", type=int, default=512)
    bl.set_defaults(func=_bench_liso)

    bt = ls.add_parser("bench-train", help="short codec training probes: CPU s/step and early learning curves")
    bt.add_argument("--out", required=True, help="output path without extension (writes .md and .json)")
    bt.add_argument("--arch", action="append", choices=["hyperprior", "elic"], help="repeat; default both")
    bt.add_argument("--size", action="append", type=int, help="crop size, repeat; default 128 and 256")
    bt.add_argument("--seconds", type=float, default=150.0, help="CPU-seconds budget of each probe (default 150)")
    bt.add_argument("--max-wall", type=float, default=180.0, help="wall-clock cap of each probe (default 180)")
    bt.add_argument("--batch", type=int, default=8)
    bt.add_argument("--lmbda", type=float, default=0.0483, help="R-D lambda (default: quality 6)")
    bt.add_argument("--N", type=int, default=64)
    bt.add_argument("--M", type=int, default=192)
    bt.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    bt.add_argument("--precision", action="append", choices=["fp32", "bf16"],
                    help="fp32 or bf16 (autocast, as train-codec --amp); repeat for both; default fp32")
    bt.add_argument("--data", default="data/photos/train")
    bt.add_argument("--max-side", type=int, default=512)
    bt.set_defaults(func=_bench_train)

    r = ls.add_parser("rd", help="the codecs alone vs Pillow JPEG and WebP: R-D table, BD-rate and plot")
    r.add_argument("--out", required=True, help="output path without extension (writes .md, .json and .png)")
    r.add_argument("--codec", action="append",
                   help="[LABEL=]weights file, zoo name or shipped quality (6 or q6); repeat for several")
    r.add_argument("--data", default="data/photos/train", help="photo folder (its val split is used)")
    r.add_argument("--n", type=int, default=32, help="number of crops (default 32)")
    r.add_argument("--size", type=int, default=256, help="crop size in px (default 256)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--max-side", type=int, default=512)
    r.set_defaults(func=_rd)

    b = ls.add_parser("bench", help="paper 004 Tables 1-4 on validation photos")
    b.add_argument("--out", required=True, help="output path without extension (writes .md and .json)")
    b.add_argument("--codec", action="append", help="[LABEL=]PATH of codec weights; repeat for several")
    b.add_argument("--decoder", help="steganography decoder (default: shipped, else fnns-r:0)")
    b.add_argument("--data", default="data/photos/train", help="photo folder (its val split is used)")
    b.add_argument("--n", type=int, default=8, help="number of images")
    b.add_argument("--size", type=int, default=128, help="crop size in px")
    b.add_argument("--fnns-steps", type=int, default=30, help="FNNS L-BFGS steps")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--max-side", type=int, default=512)
    b.add_argument("--curve", help="also read hyperbase's bitstream after these editing iteration counts, from the"
                                   " same run (e.g. 0,100,300,1000; each <= --iters): accuracy against iterations")
    edit_args(b, iters=300)
    b.set_defaults(func=_bench)

    tb = ls.add_parser("tables", help="paper 004 Tables 1-4 on stand-in photo sets, resumable per (row, image)")
    tb.add_argument("--table", type=int, required=True, choices=[1, 2, 3, 4],
                    help="1: CelebA (set celeba), 2: DIV2K (div2k), 3: MS COCO (coco), 4: steganalysis of all three")
    tb.add_argument("--out-dir", default="docs/results",
                    help="writes latent-tableK.md / .json and the resumable latent-tables-cache.json here")
    tb.add_argument("--codec", action="append",
                    help="[LABEL=]codec weights (hyperprior or ELIC-style), zoo name or shipped quality; repeat;"
                         " rows hyperbase_LABEL / ELICbase_LABEL (default: the zoo's default codec)")
    tb.add_argument("--decoder", help="fixed steganography decoder (default: shipped, else fnns-r:0)")
    tb.add_argument("--liso", help="LISO weights (train-liso): rows LISO, LISO-png, LISO-jpgQ")
    tb.add_argument("--liso-jpeg", help="LISO-JPEG weights (train-liso --jpeg Q): row LISO-JPEG")
    tb.add_argument("--liso-iters", type=int, default=None, help="learned LISO steps (default: as trained)")
    tb.add_argument("--data", default="data/photos/train", help="photo folder (its val split is used)")
    tb.add_argument("--n", type=int, default=32, help="crops per set (default 32)")
    tb.add_argument("--size", type=int, default=256, help="crop size in px, a multiple of 16 (default 256)")
    tb.add_argument("--fnns-steps", type=int, default=TD.TABLES_FNNS["steps"],
                    help=f"FNNS L-BFGS steps (default {TD.TABLES_FNNS['steps']})")
    tb.add_argument("--fnns-lr", type=float, default=TD.TABLES_FNNS["lr"],
                    help=f"FNNS L-BFGS step size (default {TD.TABLES_FNNS['lr']:g})")
    tb.add_argument("--fnns-eps", type=float, default=TD.TABLES_FNNS["eps"],
                    help=f"FNNS bound on the perturbation, +-eps (default {TD.TABLES_FNNS['eps']:g}; FNNS: 0.3)")
    tb.add_argument("--scale-lambda5", action=argparse.BooleanOptionalAction, default=TD.TABLES_SCALE_LAMBDA5,
                    help="scale --lambda5 per codec by its lambda over"
                         f" {TD.LAMBDA5_REF_LMBDA:g} (one lambda5 / lambda1 for every rate; default: one lambda5 for"
                         " all, as the paper)")
    tb.add_argument("--methods", default="fnns,train,codec,liso",
                    help="row families to run: fnns (FNNS and its saved forms), train (FNNS-JPGQ_TRAIN), codec"
                         " (hyper/ELIC rows), liso (default: all)")
    tb.add_argument("--sets", help="Table 4 only: a comma list of its sets to run (celeba,div2k,coco)")
    tb.add_argument("--seed", type=int, default=0, help="crops, messages and editing noise (default 0)")
    tb.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    tb.add_argument("--json", action="store_true", help="print the results JSON instead of a line (no progress bar)")
    tb.add_argument("--no-progress", action="store_true", help="no progress bar")
    edit_args(tb, iters=int(TD.TABLES_EDIT["iters"]), lr=TD.TABLES_EDIT["lr"], lambda5=TD.TABLES_EDIT["lambda5"],
               title="defaults tuned at 256 px, docs/results/latent-tables-tuning.md")
    tb.set_defaults(func=_tables)

    it = ls.add_parser("iters", help="hyperbase bit accuracy against editing iterations (coded and float y)")
    it.add_argument("--out", required=True, help="output path without extension (writes .md, .json and .png)")
    model_args(it)
    it.add_argument("--data", default="data/photos/train", help="photo folder (its val split is used)")
    it.add_argument("--n", type=int, default=8, help="number of crops (default 8)")
    it.add_argument("--size", type=int, default=128, help="crop size in px (default 128)")
    it.add_argument("--seed", type=int, default=0)
    it.add_argument("--max-side", type=int, default=512)
    it.add_argument("--set", choices=["celeba", "div2k", "coco"],
                    help="use the first --n crops of this stand-in set of `latent tables` (default: the val crops of"
                         " `latent bench`)")
    it.add_argument("--at", default="0,100,300,600,1000,1500",
                    help="iteration counts at which y is read (the largest is the run's length)")
    it.add_argument("--series", action="append",
                    help="LABEL[:key=value,...] changing the editing options below, e.g. 'lr1e-2:lr=1e-2' or"
                         " 'ste:lr=1e-2,rounding=ste'; repeat for several (default: one series, 'paper')")
    edit_args(it)
    it.set_defaults(func=_iters)
