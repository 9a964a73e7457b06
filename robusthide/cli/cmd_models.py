"""``robusthide models``: every model of the one zoo (watermark, imagehide, latent), and their cards."""

from __future__ import annotations

import argparse
import json


def _models(a: argparse.Namespace) -> int:
    from robusthide.zoo import list_models, model_card

    if a.card:
        print(model_card(a.card))
        return 0
    rows = list_models(a.family)
    if a.json:
        print(json.dumps(rows))
        return 0

    def cell(v: object, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    print(f"{'name':20s} {'family':9s} {'bits':>4s} {'size':>4s} {'strength':>8s} {'steps':>6s} {'MB':>5s}  summary")
    for r in rows:
        print(f"{r['name']:20s} {r['family']:9s} {cell(r['n_bits'], '4d'):>4s} {cell(r['size'], '4d'):>4s} "
              f"{cell(r['strength'], '8.2f'):>8s} {r['steps']:6d} {r['megabytes']:5.2f}  {r['summary']}")
    print("card: robusthide models --card NAME")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("models", help="list the pretrained models of every family (or print one's model card)")
    m.add_argument("--card", metavar="NAME", default=None, help="print this model's card")
    m.add_argument("--family", choices=("watermark", "imagehide", "latent"), default=None,
                   help="only this family's models")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_models)
