"""The model zoo: named pretrained models shipped inside the package, loaded offline.

Each entry names a safetensors file under ``robusthide/zoo/weights/`` and a model card under
``robusthide/zoo/cards/`` (data, recipe command, steps, CPU hours, measured results).
"""

from robusthide.zoo.registry import PRETRAINED, describe, list_models, load_model, model_card

__all__ = ["PRETRAINED", "describe", "list_models", "load_model", "model_card"]
