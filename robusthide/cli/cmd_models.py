"""``robusthide models``: the model zoo's watermarking models, and their cards."""

from __future__ import annotations

import argparse
import json


def _models(a: argparse.Namespace) -> int:
    from robusthide.zoo import list_models, model_card

    if a.card:
        print(model_card(a.card))
        return 0
    rows = list_models()
    if a.json:
        print(json.dumps(rows))
        return 0
    print(f"{'name':12s} {'bits':>4s} {'size':>4s} {'strength':>8s} {'steps':>6s} {'MB':>5s}  summary")
    for r in rows:
        print(f"{r['name']:12s} {r['n_bits']:4d} {r['size']:4d} {r['strength']:8.2f} {r['steps']:6d} "
              f"{r['megabytes']:5.2f}  {r['summary']}")
    print("card: robusthide models --card NAME")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("models", help="list the pretrained watermarking models (or print one's model card)")
    m.add_argument("--card", metavar="NAME", default=None, help="print this model's card")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_models)
