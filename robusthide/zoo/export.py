"""Export a training run's model weights to a model-zoo safetensors file (with its metadata)."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file

from robusthide import RobustHideError
from robusthide.watermark.refine import RefineConfig
from robusthide.zoo.registry import PRETRAINED
from robusthide.zoo.weights import WeightsMeta, write_weights


def export_run(run: str | Path, output: str | Path, name: str | None = None, checkpoint: str = "latest",
               strength: float = 1.0, mask_floor: float | None = None, refine_steps: int = 0,
               jnd_cap: float | None = None, refine_optimizer: str | None = None,
               refine_lr: float | None = None, refine_boost: int | None = None,
               refine_codecs: str | None = None, jnd_cap_lum_max: float | None = None,
               refine: RefineConfig | None = None, size: int | None = None,
               schema: str | None = None, soft_share: float | None = None) -> Path:
    """Write the run's embedder/extractor to ``output``.

    ``strength`` bakes a test-time strength factor (MBRS §3.4: ``cover + s * residual``) into the
    shipped model's amplitude, so the zoo model's strength 1.0 is the chosen operating point.
    ``mask_floor`` sets the floor of the perceptual mask's texture term
    (:class:`robusthide.nets.masking.PerceptualMask`): the share of the residual kept in flat areas.
    ``jnd_cap`` bounds the applied residual per pixel by that multiple of the Chou-Li luminance JND plus
    half the local standard deviation (:meth:`robusthide.nets.masking.PerceptualMask.cap`);
    ``jnd_cap_lum_max`` limits that luminance JND to so many grey levels (it rises to 20 at black).
    ``refine_steps`` > 0 turns on the embed-time refinement against the decoder
    (:meth:`robusthide.watermark.refine.Refiner.refine`, at most that many steps per image),
    with ``refine_optimizer`` (``adam`` or ``ngd``) and step size ``refine_lr`` when given; ``refine_boost``
    re-refines the images whose bits do not all read back (also after JPEG) at a higher strength, at most
    that many times (:meth:`robusthide.watermark.refine.Refiner.reads`). ``refine_codecs``
    (specs separated by ``;``) adds real codecs to the refinement (forward real, backward identity) and to
    the boost's check. ``refine``: all the refinement's settings as one
    :class:`~robusthide.watermark.refine.RefineConfig` instead of the ``refine_*`` arguments.
    ``size`` sets the working size the shipped model embeds and reads at (a fully convolutional model, such as
    the periodic ``geo`` family trained on several sizes, can run at another size than it trained at).
    ``schema`` names the payload schema messages use by default (:mod:`robusthide.payload.schemas`, a name or
    id valid for the model's bit count), stored as the weights' ``schema`` metadata; None keeps the payload's
    default for the bit count. ``soft_share`` in (0, 1) gives the soft-decision test that share of the
    false-positive budget when the model's reads are decided (:mod:`robusthide.payload.soft_detection`);
    None keeps the hard test alone.
    """
    if refine is not None:  # the one dataclass instead of the refine_* arguments
        if refine_steps or refine_optimizer or refine_lr is not None or refine_boost is not None or refine_codecs:
            raise RobustHideError("give the refinement as refine=RefineConfig(...) or as refine_* arguments, not both")
        if not isinstance(refine, RefineConfig):
            raise RobustHideError(f"refine must be a RefineConfig, got {type(refine).__name__}")
        refine.real_codecs()  # a malformed or unavailable spec fails here, not when the model loads
        default = RefineConfig().to_dict()
        settings = {k: v for k, v in refine.to_dict().items() if v != default[k]} if refine.steps else {}
        if not 0 < refine.steps <= 1000 and settings:
            raise RobustHideError(f"refine steps must be an integer in [0, 1000], got {refine.steps!r}")
    if not (0 < strength <= 4):
        raise RobustHideError(f"strength must be in (0, 4], got {strength}")
    if isinstance(refine_steps, bool) or not isinstance(refine_steps, int) or not (0 <= refine_steps <= 1000):
        raise RobustHideError(f"refine steps must be an integer in [0, 1000], got {refine_steps!r}")
    if (refine_optimizer is not None or refine_lr is not None or refine_boost or refine_codecs) and not refine_steps:
        raise RobustHideError("refine_optimizer, refine_lr, refine_boost and refine_codecs need refine_steps > 0")
    codec_specs = [t.strip() for t in (refine_codecs or "").split(";") if t.strip()]
    if codec_specs:
        from robusthide.watermark.refine import refine_codecs as build_codecs

        build_codecs(codec_specs)  # a malformed or unavailable spec fails here, not when the model loads
    if refine_boost is not None and (isinstance(refine_boost, bool) or not isinstance(refine_boost, int)
                                     or not 0 <= refine_boost <= 10):
        raise RobustHideError(f"refine boost must be an integer in [0, 10], got {refine_boost!r}")
    if refine_optimizer is not None and refine_optimizer not in ("adam", "ngd"):
        raise RobustHideError(f"refine optimizer must be adam or ngd, got {refine_optimizer!r}")
    if refine_lr is not None and not (0 < refine_lr <= 1):
        raise RobustHideError(f"refine lr must be in (0, 1], got {refine_lr}")
    if jnd_cap is not None and not (0 < jnd_cap <= 10):
        raise RobustHideError(f"JND cap must be in (0, 10], got {jnd_cap}")
    if jnd_cap_lum_max is not None and not (0 < jnd_cap_lum_max <= 20):
        raise RobustHideError(f"JND cap luminance limit must be in (0, 20] grey levels, got {jnd_cap_lum_max}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 32 <= size <= 2048):
        raise RobustHideError(f"size must be an integer in [32, 2048], got {size!r}")
    if mask_floor is not None and not (0 <= mask_floor <= 1):
        raise RobustHideError(f"mask floor must be in [0, 1], got {mask_floor}")
    run = Path(run)
    jpath, tpath = run / f"{checkpoint}.json", run / f"{checkpoint}.safetensors"
    if not jpath.exists() or not tpath.exists():
        raise RobustHideError(f"no checkpoint '{checkpoint}' in {run}")
    doc = json.loads(jpath.read_text())
    cfg = doc["config"]
    kwargs = dict(cfg["model"])
    arch = kwargs.pop("arch")
    options = {"strength": strength != 1.0, "mask_floor": mask_floor is not None,
               "jnd_cap": jnd_cap is not None, "jnd_cap_lum_max": jnd_cap_lum_max is not None,
               "refine_steps": bool(refine_steps) or bool(refine is not None and refine.steps)}
    used = [setting for setting, on in options.items() if on]
    if used and "amplitude" not in kwargs:  # only WatermarkModel architectures have residual, mask, refinement
        raise RobustHideError(f"architecture {arch!r} has no masked residual for {', '.join(used)}")
    if size is not None:
        if "size" not in kwargs:
            raise RobustHideError(f"architecture {arch!r} has no working size to set")
        kwargs["size"] = size
        from robusthide.nets.registry import create_model

        try:
            create_model(arch, **kwargs)
        except (TypeError, ValueError) as e:
            raise RobustHideError(f"size {size} does not fit architecture {arch!r}: {e}") from None
    if strength != 1.0:
        kwargs["amplitude"] = float(kwargs["amplitude"]) * strength
    if mask_floor is not None:
        kwargs["mask"] = {**kwargs.get("mask", {}), "floor": float(mask_floor)}
    if jnd_cap is not None:
        kwargs["mask"] = {**kwargs.get("mask", {}), "cap": float(jnd_cap)}
    if jnd_cap_lum_max is not None:
        if kwargs.get("mask", {}).get("cap") is None:
            raise RobustHideError("jnd_cap_lum_max limits the JND cap: the model has none (set jnd_cap too)")
        kwargs["mask"] = {**kwargs["mask"], "cap_lum_max": float(jnd_cap_lum_max)}
    if refine is not None and settings:
        kwargs["refine"] = {**kwargs.get("refine", {}), **settings}
    if refine_steps:
        kwargs["refine"] = {**kwargs.get("refine", {}), "steps": refine_steps}
        if refine_optimizer is not None:
            kwargs["refine"]["optimizer"] = refine_optimizer
        if refine_lr is not None:
            kwargs["refine"]["lr"] = float(refine_lr)
        if refine_boost is not None:
            kwargs["refine"]["boost"] = refine_boost
        if codec_specs:
            kwargs["refine"]["codecs"] = codec_specs
    state = load_file(str(tpath))
    tensors = {k[6:]: v.float().contiguous() for k, v in state.items()
               if k.startswith("model.") and not k.startswith("model.discriminator.")}
    if any(k.startswith("model.discriminator.") for k in state):
        kwargs["discriminator"] = False  # the zoo ships the embedder/extractor only
    name = name or cfg["name"]
    extra = {"strength": f"{strength:g}", "train_seconds": f"{doc['state'].get('train_seconds', 0):.0f}"}
    if schema is not None:
        from robusthide.payload import PayloadError, get_schema

        try:
            extra["schema"] = get_schema(int(kwargs["n_bits"]), schema).name
        except (PayloadError, KeyError) as e:
            raise RobustHideError(f"schema: {e}") from None
    if soft_share is not None:
        if not 0 < soft_share < 1:
            raise RobustHideError(f"soft share must be in (0, 1), got {soft_share}")
        extra["soft_share"] = f"{soft_share:g}"
    meta = WeightsMeta("watermark", arch, kwargs, name=name, card=PRETRAINED.get(name, {}).get("card", ""),
                       step=int(doc["state"]["step"]), training=cfg, extra=extra)
    return write_weights(output, tensors, meta)  # the one weights format and the one atomic writer
