"""Export a training run's model weights to a model-zoo safetensors file (with its metadata)."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from robusthide import RobustHideError
from robusthide.zoo.registry import FORMAT


def export_run(run: str | Path, output: str | Path, name: str | None = None, checkpoint: str = "latest") -> Path:
    run = Path(run)
    jpath, tpath = run / f"{checkpoint}.json", run / f"{checkpoint}.safetensors"
    if not jpath.exists() or not tpath.exists():
        raise RobustHideError(f"no checkpoint '{checkpoint}' in {run}")
    doc = json.loads(jpath.read_text())
    cfg = doc["config"]
    kwargs = dict(cfg["model"])
    arch = kwargs.pop("arch")
    tensors = {k[6:]: v.float().contiguous() for k, v in load_file(str(tpath)).items()
               if k.startswith("model.") and not k.startswith("model.discriminator.")}
    if any(k.startswith("model.discriminator.") for k in load_file(str(tpath))):
        kwargs["discriminator"] = False  # the zoo ships the embedder/extractor only
    meta = {
        "format": FORMAT,
        "arch": arch,
        "kwargs": json.dumps(kwargs),
        "name": name or cfg["name"],
        "step": str(doc["state"]["step"]),
        "train_seconds": f"{doc['state'].get('train_seconds', 0):.0f}",
        "config": json.dumps(cfg),
    }
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(out)
    out.chmod(0o644)
    return out
