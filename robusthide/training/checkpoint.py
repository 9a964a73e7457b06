"""Checkpoints of every family: tensors in safetensors, the rest in JSON, written atomically.

A checkpoint is a pair ``<dir>/<name>.safetensors`` + ``<dir>/<name>.json`` (:func:`write_checkpoint`,
:func:`read_checkpoint`). Each family chooses its tensor prefixes (the watermark: ``model.*``, ``optim.*``,
``d_optim.*``; image hiding: ``G.*``, ``D.*``, ``optim_g.*``, ``optim_d.*``; the latent codec: ``model.*``,
``optim.*``, ``aux.*``); the JSON holds the step, the training state, the optimisers' non-tensor state and
the config. Both files go through the one atomic writer (:func:`robusthide.io.safe.atomic_output`), tensors
first and JSON last, and the safetensors metadata repeats the step: a crash between the two writes is
detected on reading instead of silently mixing two steps.

:func:`save_checkpoint` / :func:`load_checkpoint` are the ``model`` + ``optim`` layout of one network and
its optimisers (the watermark trainer and the latent codec).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from robusthide import RobustHideError


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp)`` for a temporary file next to ``path``, then move it into place: the one atomic
    writer (:func:`robusthide.io.safe.atomic_output`) for writers that take a path (safetensors)."""
    from robusthide.io.safe import atomic_output

    with atomic_output(path) as tmp:
        write(tmp)


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


# -- the two files ------------------------------------------------------------------------------------------

def write_checkpoint(directory: str | Path, tensors: dict[str, torch.Tensor], doc: dict[str, Any],
                     name: str = "latest") -> Path:
    """Write ``<directory>/<name>.safetensors`` (``tensors``; metadata ``step`` when ``doc`` has one) then
    ``<directory>/<name>.json`` (``doc``), each atomically; returns the JSON's path."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    meta = {"step": str(int(doc["step"]))} if doc.get("step") is not None else None
    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(d / f"{name}.safetensors", lambda p: save_file(flat, str(p), metadata=meta))
    atomic_write(d / f"{name}.json", lambda p: p.write_text(json.dumps(doc, indent=1)))
    return d / f"{name}.json"


def read_checkpoint(directory: str | Path, name: str = "latest",
                    require_step: bool = False) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(json_doc, tensors)`` of a checkpoint. One-line errors for a missing or corrupt pair, and for a pair
    whose two files name different steps (``require_step``: also when either does not name one)."""
    d = Path(directory)
    jpath, tpath = d / f"{name}.json", d / f"{name}.safetensors"
    if not jpath.exists() or not tpath.exists():
        raise RobustHideError(f"no checkpoint '{name}' in {d}")
    try:
        doc = json.loads(jpath.read_text())
        with safe_open(str(tpath), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(tpath))
    except Exception as e:  # corrupt file
        raise RobustHideError(f"corrupt checkpoint in {d}: {_first_line(e)}") from None
    if not isinstance(doc, dict):
        raise RobustHideError(f"corrupt checkpoint in {d}: {jpath.name} is not a JSON object")
    if (require_step or ("step" in meta and "step" in doc)) and str(doc.get("step")) != meta.get("step"):
        raise RobustHideError(f"checkpoint in {d} is inconsistent (JSON step {doc.get('step')}, tensors step "
                              f"{meta.get('step')}): the last save was interrupted")
    return doc, tensors


# -- modules and optimisers ----------------------------------------------------------------------------------

def module_tensors(module: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """``module``'s state dict with keys ``<prefix>.<key>``."""
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def strip_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``<prefix>.``, prefix removed."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def model_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's state dict inside a checkpoint's tensors (keys ``model.*``, prefix removed)."""
    return strip_prefix(tensors, "model")


def optimizer_tensors(opt: torch.optim.Optimizer,
                      prefix: str = "optim") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimiser's state as ``(tensors '<prefix>.<param id>.<key>', JSON meta)``."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {"param_groups": sd["param_groups"], "scalars": {}}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                meta["scalars"][f"{pid}.{k}"] = v
    return tensors, meta


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                   prefix: str = "optim") -> None:
    """Restore ``opt`` from :func:`optimizer_tensors`' two halves."""
    state: dict[int, dict[str, Any]] = {}
    for key, v in strip_prefix(tensors, prefix).items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    for key, v in meta.get("scalars", {}).items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


# -- the model + optimisers layout ---------------------------------------------------------------------------

def pack_checkpoint(model: torch.nn.Module, opt: torch.optim.Optimizer, state: dict[str, Any],
                    extra: dict[str, torch.optim.Optimizer | None] | None = None,
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, doc)`` of model (``model.*``), optimiser (``optim.*``, JSON ``optimizer``) and ``extra``
    optimisers by prefix (``<prefix>.*``, JSON ``optimizer_<prefix>``, e.g. the discriminator's); ``state``:
    the rest of the JSON."""
    tensors = module_tensors(model, "model")
    otens, ometa = optimizer_tensors(opt)
    tensors.update(otens)
    doc = dict(state, optimizer=ometa)
    for prefix, o in (extra or {}).items():
        if o is not None:
            t2, m2 = optimizer_tensors(o, prefix)
            tensors.update(t2)
            doc[f"optimizer_{prefix}"] = m2
    return tensors, doc


def unpack_checkpoint(where: str | Path, tensors: dict[str, torch.Tensor], doc: dict[str, Any],
                      model: torch.nn.Module, opt: torch.optim.Optimizer | None,
                      extra: dict[str, torch.optim.Optimizer | None] | None = None) -> dict[str, Any]:
    """Load :func:`pack_checkpoint`'s layout into ``model`` and the optimisers (``opt`` None: weights only);
    returns ``doc`` without the optimiser entries. ``where`` names the checkpoint in messages."""
    try:
        model.load_state_dict(model_tensors(tensors))
    except RuntimeError as e:
        raise RobustHideError(f"checkpoint in {where} does not fit the model ({_first_line(e)})") from None
    doc = dict(doc)
    if opt is not None:
        load_optimizer(opt, tensors, doc.pop("optimizer"))
    for prefix, o in (extra or {}).items():
        if o is not None:
            if f"optimizer_{prefix}" not in doc:
                raise RobustHideError(f"checkpoint in {where} has no '{prefix}' optimiser state")
            load_optimizer(o, tensors, doc.pop(f"optimizer_{prefix}"), prefix)
    return doc


def save_checkpoint(directory: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
                    state: dict[str, Any], name: str = "latest",
                    extra: dict[str, torch.optim.Optimizer | None] | None = None) -> Path:
    """Save model, optimiser (and ``extra`` optimisers, e.g. the discriminator's, by prefix) and state."""
    return write_checkpoint(directory, *pack_checkpoint(model, opt, state, extra), name=name)


def load_checkpoint(directory: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer | None,
                    name: str = "latest",
                    extra: dict[str, torch.optim.Optimizer | None] | None = None) -> dict[str, Any]:
    """Restore :func:`save_checkpoint`'s checkpoint in place; returns the JSON without optimiser state."""
    doc, tensors = read_checkpoint(directory, name)
    return unpack_checkpoint(directory, tensors, doc, model, opt, extra)


def load_model_weights(source: str | Path, model: torch.nn.Module, partial: bool = False) -> list[str]:
    """Load only the model weights of a run folder (its ``latest`` checkpoint) or of a safetensors file
    (checkpoint ``model.*`` keys or bare keys): the ``train.init_from`` warm start. Every tensor must fit, unless
    ``partial`` (``train.init_partial``): then only the tensors of the same name and shape are loaded, and the
    others keep their fresh (seeded) initialisation, as the message layers of a model with a larger payload
    started from a smaller one. Returns the names of the model's tensors that were not loaded."""
    p = Path(source)
    tpath = p / "latest.safetensors" if p.is_dir() else p
    if not tpath.exists():
        raise RobustHideError(f"train.init_from: no weights at {tpath}")
    try:
        tensors = load_file(str(tpath))
    except Exception as e:  # corrupt or foreign file
        raise RobustHideError(f"train.init_from: cannot read {tpath}: {e}") from None
    msd = model_tensors(tensors) or tensors
    if partial:
        own = model.state_dict()
        fits = {k: v for k, v in msd.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
        if not fits:
            raise RobustHideError(f"train.init_from: no tensor of {tpath} fits this model")
        model.load_state_dict(fits, strict=False)
        return sorted(set(own) - set(fits))
    try:
        model.load_state_dict(msd)
    except RuntimeError as e:
        raise RobustHideError(f"train.init_from: {tpath} does not fit this model "
                              f"({str(e).splitlines()[0]}); train.init_partial: true loads the tensors "
                              "that fit") from None
    return []
