"""Checkpoints and exported models of the image-hiding networks, safetensors only (never pickle).

Training checkpoint (``<run>/latest.safetensors`` + ``<run>/latest.json``):

* safetensors: ``G.*`` (embedder / decoupler / revealer), ``D.*`` (discriminators), ``optim_g.*`` and
  ``optim_d.*`` (Adam moments); its metadata holds the ``step``;
* JSON: ``{"step", "state", "config", "arch", "optim_g", "optim_d"}`` (non-tensor optimiser state).

Both are written to a temporary file in the run folder, flushed to disk and moved into place with
``os.replace``, tensors first and JSON last; :func:`load_training_checkpoint` checks that both name the same
step, so a crash between the two writes is detected instead of silently mixing two steps.

Exported model (:func:`export_model`): only the ``G.*`` tensors (the discriminators are not needed to hide
or reveal), with safetensors metadata ``format = robusthide-imagehide/1``, ``arch`` (JSON keywords of
:class:`~robusthide.imagehiding.nets.HidingNetwork`), ``step``, ``name``, ``attack`` (the training attack
spec) and ``config`` (the training config, JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from robusthide import RobustHideError
from robusthide.imagehiding.nets import HidingNetwork
from robusthide.training.checkpoint import load_optimizer, optimizer_tensors

FORMAT = "robusthide-imagehide/1"


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` for a temporary file next to ``path``, fsync it, then ``os.replace`` (the one
    atomic writer, :func:`robusthide.io.safe.atomic_output`)."""
    from robusthide.io.safe import atomic_output

    with atomic_output(Path(path)) as tmp:
        write(tmp)


def _prefixed(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def _optim(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, meta = optimizer_tensors(opt)
    return {prefix + k[len("optim"):]: v for k, v in tensors.items()}, meta


def save_training_checkpoint(run_dir: str | Path, gen: torch.nn.Module, disc: torch.nn.Module,
                             opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                             doc: dict[str, Any], name: str = "latest") -> Path:
    """Write ``<run_dir>/<name>.safetensors`` then ``<run_dir>/<name>.json`` atomically (``doc`` must
    hold ``step``)."""
    d = Path(run_dir)
    tensors = _prefixed("G", gen)
    tensors.update(_prefixed("D", disc))
    tg, mg = _optim("optim_g", opt_g)
    td, md = _optim("optim_d", opt_d)
    tensors.update(tg)
    tensors.update(td)
    step = str(int(doc["step"]))
    atomic_write(d / f"{name}.safetensors", lambda p: save_file(tensors, str(p), metadata={"step": step}))
    full = dict(doc, optim_g=mg, optim_d=md)
    atomic_write(d / f"{name}.json", lambda p: p.write_text(json.dumps(full, indent=1)))
    return d / f"{name}.json"


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def read_training_checkpoint(run_dir: str | Path, name: str = "latest") -> tuple[dict[str, Any],
                                                                                 dict[str, torch.Tensor]]:
    """``(json_doc, tensors)`` of a checkpoint, checked for consistency."""
    d = Path(run_dir)
    jpath, tpath = d / f"{name}.json", d / f"{name}.safetensors"
    if not jpath.exists() or not tpath.exists():
        raise RobustHideError(f"no checkpoint '{name}' in {d}")
    try:
        doc = json.loads(jpath.read_text())
        with safe_open(str(tpath), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(tpath))
    except Exception as e:
        raise RobustHideError(f"corrupt checkpoint in {d}: {str(e).splitlines()[0] if str(e) else e}") from None
    if str(doc.get("step")) != meta.get("step"):
        raise RobustHideError(f"checkpoint in {d} is inconsistent (JSON step {doc.get('step')}, tensors step "
                              f"{meta.get('step')}): the last save was interrupted")
    return doc, tensors


def load_training_checkpoint(run_dir: str | Path, gen: torch.nn.Module, disc: torch.nn.Module,
                             opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                             name: str = "latest") -> dict[str, Any]:
    """Restore networks and optimisers in place; return the JSON document."""
    doc, tensors = read_training_checkpoint(run_dir, name)
    try:
        gen.load_state_dict(_strip(tensors, "G"))
        disc.load_state_dict(_strip(tensors, "D"))
    except RuntimeError as e:
        raise RobustHideError(f"checkpoint in {run_dir} does not match the config's networks "
                              f"({str(e).splitlines()[0]})") from None
    rename = {"optim_g": opt_g, "optim_d": opt_d}
    for prefix, opt in rename.items():
        ot = {"optim" + k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        load_optimizer(opt, ot, doc[prefix])
    return doc


def export_model(run_dir: str | Path, output: str | Path, name: str | None = None) -> Path:
    """Export the generator networks of a run's latest checkpoint to one safetensors file for the CLI /
    :class:`~robusthide.imagehiding.api.ImageHider`. Never overwrites a checkpoint file."""
    run_dir, out = Path(run_dir), Path(output)
    if out.suffix != ".safetensors":
        raise RobustHideError(f"{out}: the exported model must be a .safetensors file")
    if out.resolve().parent == run_dir.resolve() and out.stem == "latest":
        raise RobustHideError(f"refusing to overwrite the checkpoint {out}")
    doc, tensors = read_training_checkpoint(run_dir)
    g = _strip(tensors, "G")
    cfg = doc.get("config", {})
    meta = {
        "format": FORMAT,
        "arch": json.dumps(doc["arch"]),
        "step": str(doc["step"]),
        "name": name or str(cfg.get("name", run_dir.name)),
        "attack": str(cfg.get("attack", {}).get("spec", "")),
        "config": json.dumps(cfg),
    }
    HidingNetwork(**doc["arch"]).load_state_dict(g)  # fail here, not in the user's hands
    atomic_write(out, lambda p: save_file({k: v.contiguous() for k, v in g.items()}, str(p), metadata=meta))
    return out


def save_model(net: HidingNetwork, output: str | Path, name: str = "model", **extra: str) -> Path:
    """Write a :class:`HidingNetwork` directly in the exported format (used by tests and tools)."""
    out = Path(output)
    meta = {"format": FORMAT, "arch": json.dumps(net.arch), "step": "0", "name": name, "attack": "",
            "config": "{}"}
    meta.update(extra)
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    atomic_write(out, lambda p: save_file(tensors, str(p), metadata=meta))
    return out


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
    if meta.get("format") != FORMAT:
        raise RobustHideError(f"{p}: not an image-hiding model (format {meta.get('format')!r}, "
                              f"expected {FORMAT!r})")
    try:
        arch = json.loads(meta["arch"])
        net = HidingNetwork(**arch)
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
