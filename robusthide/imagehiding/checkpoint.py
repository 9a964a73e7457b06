"""Checkpoints and exported models of the image-hiding networks, safetensors only (never pickle).

Training checkpoint (``<run>/latest.safetensors`` + ``<run>/latest.json``):

* safetensors: ``G.*`` (embedder / decoupler / revealer), ``D.*`` (discriminators), ``optim_g.*`` and
  ``optim_d.*`` (Adam moments); its metadata holds the ``step``;
* JSON: ``{"step", "state", "config", "arch", "optim_g", "optim_d"}`` (non-tensor optimiser state).

Both are written to a temporary file in the run folder, flushed to disk and moved into place with
``os.replace``, tensors first and JSON last; :func:`load_training_checkpoint` checks that both name the same
step, so a crash between the two writes is detected instead of silently mixing two steps.

Exported model (:func:`export_model`): only the ``G.*`` tensors (the discriminators are not needed to hide
or reveal), in the one weights format of :mod:`robusthide.zoo.weights` (``robusthide/2``, family
``imagehide``, arch ``hiding-network``, ``config`` = the network's keywords, ``training`` = the training
config, ``attack`` = the training attack spec). Files of the first format (``robusthide-imagehide/1``) load too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from robusthide import RobustHideError
from robusthide.imagehiding.nets import HidingNetwork, check_model_kwargs, create_hiding_network
from robusthide.training.checkpoint import (
    load_optimizer,
    module_tensors,
    optimizer_tensors,
    read_checkpoint,
    strip_prefix,
    write_checkpoint,
)
from robusthide.zoo.weights import WeightsMeta, write_weights

#: the first export format (still read); exports are now robusthide/2 (:mod:`robusthide.zoo.weights`)
FORMAT = "robusthide-imagehide/1"
#: the ``arch`` name of image-hiding networks in the one weights format (their keywords say unet or hinet)
ARCH_NAME = "hiding-network"


def training_tensors(gen: torch.nn.Module, disc: torch.nn.Module, opt_g: torch.optim.Optimizer,
                     opt_d: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The four parts of a training checkpoint: ``(tensors G.*, D.*, optim_g.*, optim_d.*, {"optim_g",
    "optim_d"} non-tensor optimiser state)``."""
    tensors = {**module_tensors(gen, "G"), **module_tensors(disc, "D")}
    tg, mg = optimizer_tensors(opt_g, "optim_g")
    td, md = optimizer_tensors(opt_d, "optim_d")
    return {**tensors, **tg, **td}, {"optim_g": mg, "optim_d": md}


def save_training_checkpoint(run_dir: str | Path, gen: torch.nn.Module, disc: torch.nn.Module,
                             opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                             doc: dict[str, Any], name: str = "latest") -> Path:
    """Write ``<run_dir>/<name>.safetensors`` then ``<run_dir>/<name>.json`` atomically (``doc`` must
    hold ``step``)."""
    tensors, optim = training_tensors(gen, disc, opt_g, opt_d)
    return write_checkpoint(run_dir, tensors, {**doc, "step": int(doc["step"]), **optim}, name=name)


def read_training_checkpoint(run_dir: str | Path, name: str = "latest") -> tuple[dict[str, Any],
                                                                                 dict[str, torch.Tensor]]:
    """``(json_doc, tensors)`` of a checkpoint, checked for consistency (both files name the same step)."""
    return read_checkpoint(run_dir, name, require_step=True)


def restore_training_checkpoint(run_dir: str | Path, tensors: dict[str, torch.Tensor], doc: dict[str, Any],
                                gen: torch.nn.Module, disc: torch.nn.Module, opt_g: torch.optim.Optimizer,
                                opt_d: torch.optim.Optimizer) -> None:
    """Load a read checkpoint into the networks and optimisers."""
    try:
        gen.load_state_dict(strip_prefix(tensors, "G"))
        disc.load_state_dict(strip_prefix(tensors, "D"))
    except RuntimeError as e:
        raise RobustHideError(f"checkpoint in {run_dir} does not match the config's networks "
                              f"({str(e).splitlines()[0]})") from None
    load_optimizer(opt_g, tensors, doc["optim_g"], "optim_g")
    load_optimizer(opt_d, tensors, doc["optim_d"], "optim_d")


def generator_weights(source: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(arch, state dict)`` of the hiding network in a run folder (its latest checkpoint) or in an exported
    ``.safetensors`` model: the starting point of a run's ``train.init_from``."""
    p = Path(source)
    if p.is_dir():
        doc, tensors = read_training_checkpoint(p)
        return doc["arch"], strip_prefix(tensors, "G")
    net, _ = load_model(p)
    return net.arch, net.state_dict()


def load_training_checkpoint(run_dir: str | Path, gen: torch.nn.Module, disc: torch.nn.Module,
                             opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                             name: str = "latest") -> dict[str, Any]:
    """Restore networks and optimisers in place; return the JSON document."""
    doc, tensors = read_training_checkpoint(run_dir, name)
    restore_training_checkpoint(run_dir, tensors, doc, gen, disc, opt_g, opt_d)
    return doc


def export_model(run_dir: str | Path, output: str | Path, name: str | None = None,
                 size: int | None = None, card: str = "") -> Path:
    """Export the generator networks of a run's latest checkpoint to one safetensors file (the one weights
    format, :mod:`robusthide.zoo.weights`) for the CLI / :class:`~robusthide.imagehiding.api.ImageHider`.
    Never overwrites a checkpoint file. ``size``: another working size, for the fully convolutional
    ``arch: hinet`` only (trained on small crops, used larger); ``card``: its model card's file name."""
    run_dir, out = Path(run_dir), Path(output)
    if out.suffix != ".safetensors":
        raise RobustHideError(f"{out}: the exported model must be a .safetensors file")
    if out.resolve().parent == run_dir.resolve() and out.stem == "latest":
        raise RobustHideError(f"refusing to overwrite the checkpoint {out}")
    doc, tensors = read_training_checkpoint(run_dir)
    g = strip_prefix(tensors, "G")
    cfg = doc.get("config", {})
    if size is not None:
        if doc["arch"].get("arch") != "hinet":
            raise RobustHideError("only the invertible network (arch hinet) can be exported at another working size")
        doc["arch"] = check_model_kwargs({**doc["arch"], "size": size})
    create_hiding_network(**doc["arch"]).load_state_dict(g)  # fail here, not in the user's hands
    meta = WeightsMeta("imagehide", ARCH_NAME, doc["arch"], name or str(cfg.get("name", run_dir.name)), card,
                       int(doc["step"]), training=cfg, extra={"attack": str(cfg.get("attack", {}).get("spec", ""))})
    return write_weights(out, g, meta)


def save_model(net: HidingNetwork, output: str | Path, name: str = "model", **extra: str) -> Path:
    """Write a hiding network directly in the exported format (used by tests and tools)."""
    tensors = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    return write_weights(output, tensors, WeightsMeta("imagehide", ARCH_NAME, dict(net.arch), name,
                                                      extra={"attack": "", **extra}))


def load_model(path: str | Path) -> tuple[HidingNetwork, dict[str, str]]:
    """Load an exported model: ``(network in eval mode, metadata)``. One-line errors for a missing file, a
    file that is not safetensors, or one of another format."""
    p = Path(path)
    if not p.exists():
        raise RobustHideError(f"model not found: {p}")
    if p.is_dir():
        raise RobustHideError(f"{p} is a folder, not a model file (export a run with 'robusthide imagehide "
                              f"export RUN -o MODEL.safetensors')")
    try:
        with safe_open(str(p), "pt") as f:
            meta = dict(f.metadata() or {})
        tensors = load_file(str(p))
    except Exception:
        raise RobustHideError(f"{p}: not a safetensors model file") from None
    from robusthide.zoo.weights import FORMAT as WEIGHTS_FORMAT
    from robusthide.zoo.weights import normalize

    fmt = meta.get("format")
    if fmt not in (FORMAT, WEIGHTS_FORMAT) or (fmt == WEIGHTS_FORMAT and meta.get("family") != "imagehide"):
        raise RobustHideError(f"{p}: not an image-hiding model (format {fmt!r}, family {meta.get('family')!r}; "
                              f"expected {WEIGHTS_FORMAT!r} of family imagehide, or {FORMAT!r})")
    try:  # the one weights reader (robusthide.zoo.weights): the config of either format
        arch = normalize(p, meta).config
    except RobustHideError as e:
        raise RobustHideError(f"{p}: damaged model file ({str(e).removeprefix(f'{p}: ')})") from None
    try:
        net = create_hiding_network(**arch)
        net.load_state_dict(tensors)
    except RobustHideError as e:
        raise RobustHideError(f"{p}: bad architecture metadata ({e})") from None
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else "")
        raise RobustHideError(f"{p}: the weights do not match the architecture in its metadata "
                              f"({detail[:300]})") from None
    except (KeyError, ValueError, TypeError) as e:
        raise RobustHideError(f"{p}: damaged model file ({type(e).__name__}: {e})") from None
    net.eval()
    return net, meta
