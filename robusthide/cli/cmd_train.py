"""``robusthide train CONFIG``, ``robusthide export RUN``, ``robusthide plot RUN``."""

from __future__ import annotations

import argparse
import json


def _train(a: argparse.Namespace) -> int:
    from robusthide.training.config import load_config
    from robusthide.training.trainer import Trainer

    overrides = list(a.set or [])
    if a.name:
        overrides.append(f"name={a.name}")
    cfg = load_config(a.config, overrides)
    if a.resume and a.config is None:
        raise SystemExit("--resume needs the config")
    tr = Trainer(cfg, resume=a.resume, device=a.device, progress=not a.no_progress, compile=a.compile)
    last = tr.run(max_steps=a.max_steps)
    if a.json and tr.rank == 0:
        print(json.dumps(last))
    return 0


def _export(a: argparse.Namespace) -> int:
    from robusthide.zoo.export import export_run

    path = export_run(a.run, a.output, name=a.name, strength=a.strength, mask_floor=a.mask_floor,
                      refine_steps=a.refine, jnd_cap=a.jnd_cap, refine_optimizer=a.refine_optimizer,
                      refine_lr=a.refine_lr, refine_boost=a.refine_boost, refine_codecs=a.refine_codecs,
                      jnd_cap_lum_max=a.jnd_cap_lum_max, size=a.size, schema=a.schema,
                      soft_share=a.soft_share)
    print(f"wrote {path}")
    return 0


def _plot(a: argparse.Namespace) -> int:
    from robusthide.training.plot import plot_run

    print(f"wrote {plot_run(a.run, a.output)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config (see configs/)")
    p.add_argument("config", nargs="?", help="YAML config file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    p.add_argument("--name", help="run name (folder under out/)")
    p.add_argument("--resume", action="store_true", help="continue exactly from the run's last checkpoint")
    p.add_argument("--max-steps", type=int, help="stop at this step (the schedule still uses train.steps)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--compile", action="store_true",
                   help="run the nets through torch.compile (a CPU needs g++; compiles for a minute or two, then "
                        "faster steps; the run resumes with or without it)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the last metrics as JSON")
    p.set_defaults(func=_train)
    e = sub.add_parser("export", help="export a run's weights to a model-zoo safetensors file")
    e.add_argument("run", help="run folder (runs/NAME)")
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--name", default=None)
    e.add_argument("--size", type=int, default=None,
                   help="working size the shipped model embeds and reads at (default: the training config's)")
    e.add_argument("--strength", type=float, default=1.0,
                   help="bake a strength factor into the shipped amplitude (the model's operating point)")
    e.add_argument("--mask-floor", type=float, default=None,
                   help="floor of the perceptual mask's texture term, 0..1 (training default 0.3): the share "
                        "of the residual kept in flat areas")
    e.add_argument("--jnd-cap", type=float, default=None, metavar="K",
                   help="bound the applied residual per pixel by K x the Chou-Li luminance JND + half the local "
                        "standard deviation (flat areas get at most a few grey levels)")
    e.add_argument("--jnd-cap-lum-max", type=float, default=None, metavar="G",
                   help="limit the cap's luminance JND to G grey levels (Chou-Li's rises to 20 at black, more "
                        "than a good display hides in dark flat areas)")
    e.add_argument("--refine", type=int, default=0, metavar="STEPS",
                   help="embed-time refinement against the decoder, at most STEPS steps per image (0: off)")
    e.add_argument("--refine-optimizer", choices=["adam", "ngd"], default=None,
                   help="refinement steps: adam (default) or ngd (normalised gradient descent: each step has RMS "
                        "LR, pixels moved in proportion to their gradient)")
    e.add_argument("--refine-lr", type=float, default=None, metavar="LR", help="refinement step size (default 0.02)")
    e.add_argument("--refine-boost", type=int, default=None, metavar="N",
                   help="images whose bits do not all read back, also after JPEG, are refined again at a 15%% "
                        "higher strength, at most N times (default 0)")
    e.add_argument("--refine-codecs", default=None, metavar="SPECS",
                   help="real codecs the refinement also optimises through (forward real, backward identity) and "
                        "the boost checks, ';' between specs, e.g. 'h264:crf=28;webp:q=50'")
    e.add_argument("--schema", default=None, metavar="NAME",
                   help="the payload schema messages use by default (robust, balanced, large, max or an id; "
                        "default: robust, the payload's default for the bit count)")
    e.add_argument("--soft-share", type=float, default=None, metavar="F",
                   help="decide reads by the hard and the soft-decision test at once, the latter with the share F "
                        "of the false-positive budget (0 < F < 1; default: the hard test alone)")
    e.set_defaults(func=_export)
    q = sub.add_parser("plot", help="draw a run's training curves to PNG")
    q.add_argument("run")
    q.add_argument("-o", "--output", default=None)
    q.set_defaults(func=_plot)
