"""Checkpoints: tensors in safetensors (model and optimiser), the rest in JSON; written atomically.

``<dir>/latest.safetensors`` holds ``model.*`` and ``optim.*`` tensors; ``<dir>/latest.json`` the step,
the training state (loss-weight controller etc.), the optimiser's non-tensor state and the config.
Both are written to temporary files and moved into place with ``os.replace`` (the JSON last, so a
checkpoint is complete whenever its JSON names its step).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from robusthide import RobustHideError


def _atomic_write_bytes(path: Path, write) -> None:
    """``write(tmp)`` through the one atomic writer (:func:`robusthide.io.safe.atomic_output`)."""
    from robusthide.io.safe import atomic_output

    with atomic_output(path) as tmp:
        write(tmp)


def optimizer_tensors(opt: torch.optim.Optimizer,
                      prefix: str = "optim") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
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
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if not key.startswith(prefix + "."):
            continue
        _, pid, k = key.split(".", 2)
        state.setdefault(int(pid), {})[k] = v
    for key, v in meta.get("scalars", {}).items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def model_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's state dict inside a checkpoint's tensors (keys ``model.*``, prefix removed)."""
    return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}


def save_checkpoint(directory: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
                    state: dict[str, Any], name: str = "latest",
                    extra: dict[str, torch.optim.Optimizer | None] | None = None) -> Path:
    """Save model, optimiser (and ``extra`` optimisers, e.g. the discriminator's, by prefix) and state."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    otens, ometa = optimizer_tensors(opt)
    tensors.update(otens)
    doc = dict(state, optimizer=ometa)
    for prefix, o in (extra or {}).items():
        if o is not None:
            t2, m2 = optimizer_tensors(o, prefix)
            tensors.update(t2)
            doc[f"optimizer_{prefix}"] = m2
    _atomic_write_bytes(d / f"{name}.safetensors", lambda p: save_file(tensors, str(p)))
    _atomic_write_bytes(d / f"{name}.json", lambda p: p.write_text(json.dumps(doc, indent=1)))
    return d / f"{name}.json"


def load_checkpoint(directory: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer | None,
                    name: str = "latest",
                    extra: dict[str, torch.optim.Optimizer | None] | None = None) -> dict[str, Any]:
    d = Path(directory)
    jpath, tpath = d / f"{name}.json", d / f"{name}.safetensors"
    if not jpath.exists() or not tpath.exists():
        raise RobustHideError(f"no checkpoint '{name}' in {d}")
    try:
        doc = json.loads(jpath.read_text())
        tensors = load_file(str(tpath))
    except Exception as e:  # corrupt file
        raise RobustHideError(f"corrupt checkpoint in {d}: {e}") from None
    model.load_state_dict(model_tensors(tensors))
    if opt is not None:
        load_optimizer(opt, tensors, doc.pop("optimizer"))
    for prefix, o in (extra or {}).items():
        if o is not None:
            if f"optimizer_{prefix}" not in doc:
                raise RobustHideError(f"checkpoint in {d} has no '{prefix}' optimiser state")
            load_optimizer(o, tensors, doc.pop(f"optimizer_{prefix}"), prefix)
    return doc


def load_model_weights(source: str | Path, model: torch.nn.Module) -> None:
    """Load only the model weights of a run folder (its ``latest`` checkpoint) or of a safetensors file
    (checkpoint ``model.*`` keys or bare keys): the ``train.init_from`` warm start."""
    p = Path(source)
    tpath = p / "latest.safetensors" if p.is_dir() else p
    if not tpath.exists():
        raise RobustHideError(f"train.init_from: no weights at {tpath}")
    try:
        tensors = load_file(str(tpath))
    except Exception as e:  # corrupt or foreign file
        raise RobustHideError(f"train.init_from: cannot read {tpath}: {e}") from None
    msd = model_tensors(tensors) or tensors
    try:
        model.load_state_dict(msd)
    except RuntimeError as e:
        raise RobustHideError(f"train.init_from: {tpath} does not fit this model "
                              f"({str(e).splitlines()[0]})") from None
