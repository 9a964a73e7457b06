"""``robusthide data photos DEST``: fetch training photos from Debian packages (see robusthide.data.photos)."""

from __future__ import annotations

import argparse
import json


def _photos(a: argparse.Namespace) -> int:
    from robusthide.data.photos import materialize_photos

    r = materialize_photos(a.dest, a.cache, verify=not a.no_verify)
    if a.json:
        print(json.dumps(r))
    else:
        print(f"{r['photos']} photos -> {r['dest']}/train")
        if "verified" in r:
            print("checksums: " + ("match robusthide's list" if r["verified"] else
                                  f"{len(r['missing'])} missing, {len(r['changed'])} changed (package updates?)"))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("data", help="training data")
    ds = d.add_subparsers(dest="data_command", metavar="WHAT")
    p = ds.add_parser("photos", help="fetch free photographs from Debian packages into DEST/train")
    p.add_argument("dest")
    p.add_argument("--cache", help="download cache (default ~/.cache/robusthide/photo-debs)")
    p.add_argument("--no-verify", action="store_true", help="do not compare with the shipped checksums")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_photos)
