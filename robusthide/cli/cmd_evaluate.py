"""``robusthide evaluate``, ``robusthide evaluate-sweep`` and ``robusthide reproduce``: robustness matrices
under real codecs, and same-budget reruns of the papers' comparison tables.

Examples::

    robusthide evaluate default --data data/photos --split val --n 50 --size 512 \\
        --out docs/results/default-512
    robusthide evaluate model.safetensors --data photos/ --attacks "jpeg:q=10,50,90;identity" --json
    robusthide evaluate default --data data/photos --n 16 --size 128 \
        --attacks "identity;cropout:p=0.3;dropout:p=0.3;crop-white:p=0.035;blur:sigma=2;jpeg:q=50"
    robusthide evaluate default --data data/photos --n 20 --size 512 --peers dwtDct,dwtDctSvd,rivaGan
    robusthide evaluate-sweep default --data data/photos --attack "jpeg:q=10,30,50,70,90" \\
        --strengths 0.6,0.8,1,1.2,1.4,2,2.4
    robusthide reproduce --list
    robusthide reproduce p000-table1            # writes docs/results/p000-table1.md / .json
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from robusthide import RobustHideError
from robusthide.cli.args import SEARCHES


def _size(text: str) -> int | str:
    if text.strip().lower() == "full":
        return "full"
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels or 'full', got {text!r}") from None
    if v < 16:
        raise argparse.ArgumentTypeError(f"size must be at least 16, got {v}")
    return v


def _strengths(text: str) -> list[float]:
    out = []
    for t in text.split(","):
        t = t.strip()
        if not t:
            continue
        try:
            v = float(t)
        except ValueError:
            raise RobustHideError(f"--strengths: not a number: {t!r}") from None
        if not (v > 0 and math.isfinite(v)):
            raise RobustHideError(f"--strengths: must be positive, got {t}")
        out.append(v)
    if not out:
        raise RobustHideError("--strengths: no values")
    return out


def _default_out(model: str, suffix: str) -> Path:
    stem = Path(model).stem if Path(model).suffix else model
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-") or "model"
    return Path("docs/results") / f"{stem}-{suffix}"


def _norm_out(text: str) -> Path:
    from robusthide.evaluation.matrix_report import out_paths

    return out_paths(text)["md"].with_suffix("")


def _load(a: argparse.Namespace) -> Any:
    from robusthide.evaluation.matrix import ModelMethod
    from robusthide.zoo import load_model

    device = a.device
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    name = Path(a.model).stem if Path(a.model).suffix else a.model
    soft = getattr(a, "soft_share", None)
    if soft is not None and not 0 <= soft < 1:
        raise RobustHideError(f"--soft-share must be in [0, 1), got {soft:g}")
    try:
        model = load_model(a.model, device=device)
    except (RuntimeError, AssertionError) as e:  # e.g. a CUDA device that is not there
        raise RobustHideError(f"cannot load {a.model} on {device}: {str(e).splitlines()[0]}") from None
    if soft is not None:  # the soft-decision test's share, instead of the weights' own (docs/payload.md)
        model.meta = {**(getattr(model, "meta", None) or {}), "soft_share": f"{soft:g}"}
    return ModelMethod(model, name=name)


def _check_out(prefix: Path, model: str, data: str) -> None:
    """Refuse output prefixes that could overwrite an input (the weights file, images in --data)."""
    from robusthide.evaluation.matrix_report import out_paths

    m = Path(model).resolve()
    if any(p.resolve() == m for p in out_paths(prefix).values()):
        raise RobustHideError(f"--out {prefix} would overwrite the model file")
    d = Path(data).resolve()
    if d == prefix.resolve().parent or d in prefix.resolve().parents:
        raise RobustHideError(f"--out {prefix} is inside the data folder {data}; write results elsewhere")


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    from robusthide.io.results import jsonable

    return jsonable({k: v for k, v in result.items() if k != "per_image"})


_FLAGS = (("data", "--data", None), ("split", "--split", None), ("n", "--n", None), ("size", "--size", "full"),
          ("crop", "--crop", "random"), ("seed", "--seed", 0), ("attacks", "--attacks", None),
          ("attack", "--attack", "jpeg:q=50"), ("strengths", "--strengths", None), ("strength", "--strength", 1.0),
          ("peers", "--peers", None), ("search", "--search", None), ("payload", "--payload", False),
          ("soft_share", "--soft-share", None), ("out", "--out", None))


def _command(sub: str, a: argparse.Namespace) -> str:
    from robusthide.cli.command import command_line

    return command_line([sub, str(a.model)], a, _FLAGS, always=("attacks", "strengths"))


def _evaluate(a: argparse.Namespace) -> int:
    from robusthide.evaluation.attacks_grammar import expand_attacks, validate_attacks
    from robusthide.evaluation.images import image_set
    from robusthide.evaluation.matrix import robustness_matrix
    from robusthide.evaluation.matrix_report import matrix_markdown, write_comparison, write_matrix
    from robusthide.evaluation.peers import get_peer, parse_peers

    attacks = expand_attacks(a.attacks)
    validate_attacks(attacks)          # unknown codecs fail before any work
    peers = parse_peers(a.peers)
    out = _norm_out(a.out) if a.out else _default_out(a.model, "matrix")
    _check_out(out, a.model, a.data)
    method = _load(a)
    peer_objs = [get_peer(p, method.n_bits) for p in peers]
    images = image_set(a.data, n=a.n, size=a.size, seed=a.seed, split=a.split, crop=a.crop)
    progress = not a.no_progress
    res = robustness_matrix(method, images, attacks, seed=a.seed, strength=a.strength, batch=a.batch,
                            progress=progress, search=a.search, payload=a.payload)
    res["command"] = _command("evaluate", a)
    paths = write_matrix(res, out)
    results = [res]
    for p in peer_objs:
        r = robustness_matrix(p, images, attacks, seed=a.seed, strength=1.0, batch=a.batch, progress=progress)
        r["command"] = res["command"]
        written = write_matrix(r, out.with_name(f"{out.name}-{p.name}"))
        paths.update({f"{p.name}.{k}": v for k, v in written.items()})
        results.append(r)
    if peer_objs:
        paths.update({f"compare.{k}": v for k, v in write_comparison(results, out).items()})
    if a.json:
        print(json.dumps({"results": [_summary(r) for r in results], "files": paths}, indent=1))
    else:
        for r in results:
            sys.stdout.write(matrix_markdown(r) + "\n")
        print("wrote " + ", ".join(paths.values()))
    return 0


def _sweep(a: argparse.Namespace) -> int:
    from robusthide.evaluation.attacks_grammar import expand_attacks, validate_attacks
    from robusthide.evaluation.images import image_set
    from robusthide.evaluation.matrix import strength_sweep
    from robusthide.evaluation.matrix_report import sweep_markdown, write_sweep

    attacks = expand_attacks(a.attack)
    validate_attacks(attacks)
    strengths = _strengths(a.strengths)
    out = _norm_out(a.out) if a.out else _default_out(a.model, "strength-sweep")
    _check_out(out, a.model, a.data)
    method = _load(a)
    images = image_set(a.data, n=a.n, size=a.size, seed=a.seed, split=a.split, crop=a.crop)
    res = strength_sweep(method, images, attacks, strengths, seed=a.seed, batch=a.batch,
                         progress=not a.no_progress)
    res["command"] = _command("evaluate-sweep", a)
    return _report(a, res, write_sweep(res, out), sweep_markdown)


def _report(a: argparse.Namespace, res: dict[str, Any], paths: dict[str, str], markdown: Any) -> int:
    """Print a written result: JSON with ``--json``, else its markdown and the files written."""
    if a.json:
        from robusthide.io.results import jsonable

        print(json.dumps({"result": jsonable(res), "files": paths}, indent=1))
    else:
        sys.stdout.write(markdown(res) + "\n")
        print("wrote " + ", ".join(paths.values()))
    return 0


def _curves(a: argparse.Namespace) -> int:
    from robusthide.evaluation.curves import CURVES, curves_markdown, geometry_curves, write_curves
    from robusthide.evaluation.images import image_set

    fams = [f.strip() for f in a.curves.split(",") if f.strip()]
    unknown = [f for f in fams if f not in CURVES]
    if unknown or not fams:
        raise RobustHideError(f"unknown curve {(unknown or [a.curves])[0]!r} (known: {', '.join(CURVES)})")
    out = _norm_out(a.out) if a.out else _default_out(a.model, "geometry")
    _check_out(out, a.model, a.data)
    method = _load(a)
    images = image_set(a.data, n=a.n, size=a.size, seed=a.seed, split=a.split, crop=a.crop)
    res = geometry_curves(method, images, fams, seed=a.seed, progress=not a.no_progress, search=a.search)
    res["command"] = _command("evaluate-geometry", a) + (f" --curves {a.curves}" if a.curves != ",".join(CURVES)
                                                         else "")
    return _report(a, res, write_curves(res, out), curves_markdown)


def _plot_curves(a: argparse.Namespace) -> int:
    from robusthide.evaluation.curves import overlay_curves

    results = []
    for f in a.results:
        try:
            doc = json.loads(Path(f).read_text())
        except (OSError, ValueError) as e:
            raise RobustHideError(f"{f}: not a readable results file ({str(e).splitlines()[0]})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("curves"), dict):
            raise RobustHideError(f"{f}: no geometry curves in it (write one with robusthide evaluate-geometry)")
        results.append(doc)
    out = _norm_out(a.out)
    cmd = "robusthide plot-geometry " + " ".join(a.results) + f" --out {a.out}"
    paths = overlay_curves(results, out, command=cmd)
    print("wrote " + ", ".join(paths.values()))
    return 0


#: where ``robusthide reproduce`` reads photos, trains and writes by default
REPRODUCE_DEFAULTS = {"data": "data/photos/train", "runs": "runs/reproduce", "out": "docs/results"}


def _reproduce(a: argparse.Namespace) -> int:
    from robusthide.evaluation.reproduce import estimate_minutes, list_reproductions, run_reproduction

    if a.list:
        reps = list_reproductions()
        if a.json:
            print(json.dumps([{"name": r.name, "title": r.title, "source": r.source, "kind": r.kind,
                               "columns": [c.label for c in r.columns], "rows": [x.label for x in r.rows],
                               "steps": r.budget.steps, "estimated_minutes": round(estimate_minutes(r), 1)}
                              for r in reps], indent=1, ensure_ascii=False))
            return 0
        for r in reps:
            what = f"{len(r.columns)} columns x {r.budget.steps} steps" if r.kind == "train" else \
                f"{len(r.columns)} strengths, no training"
            print(f"{r.name:16s} {r.source}")
            if r.kind == "train":
                print(f"{'':16s} columns: {', '.join(c.slug for c in r.columns)}")
            print(f"{'':16s} {what}, {r.budget.net if r.kind == 'train' else r.model}, {r.budget.n_bits} bits, "
                  f"{r.budget.size}x{r.budget.size}; about {estimate_minutes(r):.0f} min on 2 cores")
        return 0
    if not a.name:
        raise RobustHideError("give a reproduction NAME (robusthide reproduce --list shows them)")
    if a.combine:
        return _combine_seeds(a)
    doc = run_reproduction(a.name, steps=a.steps, n_test=a.n_test, data=a.data, runs=a.runs, out=a.out,
                           progress=not a.no_progress, command_defaults=REPRODUCE_DEFAULTS, net=a.net,
                           size=a.size, seed=a.seed, tag=a.tag, columns=a.column,
                           warm_steps_n=a.warm_steps, device=None if a.device == "auto" else a.device,
                           warm_mode=a.warm_mode, compile=a.compile)
    if "trained" in doc:  # --column: training only
        if a.json:
            print(json.dumps(doc, indent=1, ensure_ascii=False))
        else:
            for t in doc["trained"]:
                print(f"{t['label']}: {t['status']} at step {t['step']} ({t['train_seconds'] / 60:.1f} min of "
                      f"training), {t['run_dir']}")
        return 0
    if a.json:
        from robusthide.io.results import jsonable

        print(json.dumps(jsonable(doc), indent=1, ensure_ascii=False))
    else:
        for c in doc["claims"]:
            print(f"- {c['sentence']}")
        print(f"wrote {Path(a.out) / (doc['name'] + '.md')}, {Path(a.out) / (doc['name'] + '.json')}")
    return 0


def _combine_seeds(a: argparse.Namespace) -> int:
    """``robusthide reproduce NAME --combine A.json B.json``: the seeds' results side by side."""
    import shlex

    from robusthide.evaluation.reproduce import get_reproduction, variant
    from robusthide.evaluation.reproduce_seeds import combine_seeds, read_seed_results, write_seeds

    training = [f for f, v in (("--column", a.column), ("--steps", a.steps), ("--net", a.net), ("--size", a.size),
                                ("--seed", a.seed), ("--warm-steps", a.warm_steps), ("--warm-mode", a.warm_mode))
                if v is not None]
    if training:
        raise RobustHideError(f"--combine reads finished results and trains nothing: {', '.join(training)} "
                              f"{'does' if len(training) == 1 else 'do'} not apply")
    rep = get_reproduction(a.name)
    name = variant(rep, tag=a.tag or "seeds").name
    doc = combine_seeds(read_seed_results(a.combine), rep)
    words = ["robusthide", "reproduce", a.name, "--combine", *a.combine]
    words += ["--tag", a.tag] if a.tag else []
    words += ["--out", a.out] if a.out != REPRODUCE_DEFAULTS["out"] else []
    paths = write_seeds(doc, a.out, name, shlex.join(words))
    if a.json:
        print(json.dumps(doc, indent=1, ensure_ascii=False))
    else:
        for c in doc["claims"]:
            print(f"- {c['claim']}: {c['verdict']} across seeds {', '.join(map(str, doc['seeds']))} "
                  f"(each: {'; '.join(c['seeds'])})")
        print(f"wrote {paths['md']}, {paths['json']}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo model name (e.g. default) or a robusthide .safetensors weights file")
    p.add_argument("--data", required=True, metavar="DIR", help="folder of images (searched recursively)")
    p.add_argument("--split", choices=["train", "val"], default=None,
                   help="keep only this split of the folder (the training split by file-name hash)")
    p.add_argument("--n", type=int, default=None, help="use N images (a seeded choice; default: all)")
    p.add_argument("--size", type=_size, default="full", metavar="S|full",
                   help="S: S x S crops (see --crop); full: full resolution (default)")
    p.add_argument("--crop", choices=["random", "centre"], default="random",
                   help="where --size S crops: seeded random position (default) or the centre")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the messages, image choice and crops (default 0)")
    p.add_argument("--batch", type=int, default=8, help="images per model / codec batch (default 8)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--soft-share", type=float, default=None, metavar="F",
                   help="decide message reads (--payload) with the soft-decision test at this share of the "
                        "detection budget (0 <= F < 1) instead of the weights' own (docs/payload.md)")


def register(sub: argparse._SubParsersAction) -> None:
    from robusthide.evaluation.attacks_grammar import DEFAULT_ATTACKS

    p = sub.add_parser(
        "evaluate", help="robustness matrix of a model under real codecs (BER, word accuracy, PSNR, SSIM...)",
        description="Embed seeded random messages, attack with real codecs, decode; write PREFIX.md/.json/"
                    ".csv/.png. Attack list: ';' separates codecs, a bare number after a comma continues the "
                    "previous key's sweep (jpeg:q=10,50,subsampling=444 = two attacks). Besides codecs: the "
                    "HiDDeN / MBRS distortions crop-white:p=0.035, cropout:p=0.3, dropout:p=0.3 (p = share of the "
                    "marked image kept; cropout and dropout take the rest from the cover), blur:sigma=2 and "
                    "gaussian:sigma=0.02 (noise on [0, 1] pixels).")
    _common(p)
    p.add_argument("--attacks", default=DEFAULT_ATTACKS, metavar="SPEC",
                   help=f"attack list (default: {DEFAULT_ATTACKS})")
    p.add_argument("--strength", type=float, default=1.0, help="test-time strength factor (default 1)")
    p.add_argument("--search", choices=SEARCHES, default=None,
                   help="decode each attacked image through a search (robusthide models; default: the model's "
                        "own): none (as it is), staged (as it is, then inset, reframe, slide, rotate, crop, corner "
                        "and turn), crop (centred crops), reframe (a band of a frame of another common aspect ratio), "
                        "slide (such a band anywhere along its frame), anywhere (a crop that kept the aspect "
                        "ratio, at any place), "
                        "rotate (-5..5 degrees), corner (a crop that kept a corner and the aspect ratio), inset (a "
                        "photo inside a larger picture), turn (5.5..45 degrees either way, quarter turns), geometry "
                        "(mirror images x crop side fractions); whole-image models also read every mirror image, "
                        "as extract does")
    p.add_argument("--payload", action="store_true",
                   help="embed BCH codewords of random messages (the model's default schema) and report the "
                        "share of images whose message is read back exactly (msg exact)")
    p.add_argument("--out", default=None, metavar="PREFIX",
                   help="output prefix (default docs/results/MODEL-matrix): writes PREFIX.md/.json/.csv/.png")
    p.add_argument("--peers", default=None, metavar="LIST",
                   help="also evaluate invisible-watermark methods: dwtDct,dwtDctSvd,rivaGan "
                        "(needs: pip install 'robusthide[peers]')")
    p.set_defaults(func=_evaluate)

    s = sub.add_parser("evaluate-sweep", help="PSNR against BER over strength factors (MBRS Table 3 style)")
    _common(s)
    s.add_argument("--attack", default="jpeg:q=50", metavar="SPEC",
                   help="attack or attack list (default jpeg:q=50; e.g. jpeg:q=10,30,50,70,90)")
    s.add_argument("--strengths", default="0.5,0.75,1,1.25,1.5", help="comma-separated strength factors")
    s.add_argument("--out", default=None, metavar="PREFIX",
                   help="output prefix (default docs/results/MODEL-strength-sweep)")
    s.set_defaults(func=_sweep)

    g = sub.add_parser("evaluate-geometry",
                       help="message-exact rate against rotation, area kept and scale (curves, PNG)")
    _common(g)
    g.add_argument("--curves", default="rotation,area,area-centre,scale",
                   help="which curves (default rotation,area,area-centre,scale)")
    g.add_argument("--search", choices=SEARCHES, default=None,
                   help="extraction search (default: the model's own)")
    g.add_argument("--out", default=None, metavar="PREFIX",
                   help="output prefix (default docs/results/MODEL-geometry): writes PREFIX.md/.json/.png")
    g.set_defaults(func=_curves)

    c = sub.add_parser("plot-geometry", help="draw several evaluate-geometry results in one figure (PNG + MD)",
                       description="One panel per curve, a line per results file (e.g. one per extraction "
                                   "search); writes PREFIX.png and PREFIX.md (a table of message-exact rates).")
    c.add_argument("results", nargs="+", metavar="JSON", help="results of robusthide evaluate-geometry")
    c.add_argument("--out", required=True, metavar="PREFIX", help="writes PREFIX.png and PREFIX.md")
    c.set_defaults(func=_plot_curves)

    r = sub.add_parser(
        "reproduce", help="train and evaluate a scaled-down, same-budget rerun of a paper's comparison table",
        description="Train every column of a paper's comparison with one budget (steps, image size, payload, "
                    "net), evaluate under real codecs on the validation photos, and write OUT/NAME.md / .json: "
                    "our table, the paper's beside it, the budget, the command and whether each of the paper's "
                    "orderings holds. Resumable: finished columns are skipped, interrupted ones resumed.")
    r.add_argument("name", nargs="?", help="reproduction name (see --list)")
    r.add_argument("--list", action="store_true", help="list the reproductions with their budgets")
    r.add_argument("--steps", type=int, default=None, help="training steps per column (default: the budget's)")
    r.add_argument("--warm-steps", type=int, default=None, metavar="N",
                   help="steps of the shared warm start (default: the budget's, scaled with --steps)")
    r.add_argument("--warm-mode", choices=["message", "full"], default=None,
                   help="what the shared warm start trains: the message path alone (message, the default) or the "
                        "net's whole recipe on identity (full: a shared pretraining); needs --tag")
    r.add_argument("--n-test", type=int, default=None, help="number of test crops (default: the budget's)")
    r.add_argument("--data", default=REPRODUCE_DEFAULTS["data"], metavar="DIR",
                   help="photo folder: its train split trains, its val split tests (default data/photos/train)")
    r.add_argument("--runs", default=REPRODUCE_DEFAULTS["runs"], metavar="DIR",
                   help="training runs go to DIR/NAME/COLUMN (default runs/reproduce)")
    r.add_argument("--out", default=REPRODUCE_DEFAULTS["out"], metavar="DIR",
                   help="write DIR/NAME.md and DIR/NAME.json (default docs/results)")
    r.add_argument("--net", default=None, choices=["lean", "hidden", "mbrs"],
                   help="train this net instead of the budget's (hidden, mbrs: the papers' networks with their "
                        "papers' losses and weights); needs --tag")
    r.add_argument("--size", type=int, default=None, metavar="S", help="image size instead of the budget's; needs "
                   "--tag")
    r.add_argument("--seed", type=int, default=None, help="training seed (the test images stay the same); needs --tag")
    r.add_argument("--tag", default=None, help="name of a budget variant: runs in RUNS/NAME-TAG, results in "
                   "OUT/NAME-TAG.md/.json")
    r.add_argument("--column", action="append", default=None, metavar="COLUMN",
                   help="train only this column (label or slug; repeatable) and the shared warm start, resumably, "
                        "without evaluating; a later run without --column evaluates every finished column")
    r.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where the columns train (auto: CUDA when present, else the CPU); the test runs on the CPU")
    r.add_argument("--compile", action="store_true",
                   help="train the columns' nets through torch.compile (a CPU needs g++; the MBRS net's step 1.27x "
                        "faster on one thread, the same on two; a column resumes with or without it)")
    r.add_argument("--combine", nargs="+", default=None, metavar="JSON",
                   help="train nothing: combine the results files of two or more training seeds of NAME (each "
                        "OUT/NAME-TAG.json) into OUT/NAME-TAG.md/.json (TAG from --tag, default 'seeds'): each cell's "
                        "mean and seed values, each claim judged in every seed and across them")
    r.add_argument("--json", action="store_true", help="print the result document as JSON")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.set_defaults(func=_reproduce)
