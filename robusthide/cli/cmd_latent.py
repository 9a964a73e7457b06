"""``robusthide latent embed|extract|compress|decode``: paper 004, hiding a message while compressing by editing the
latent of a learned codec, and the codec alone. The research subcommands (training, benches, the paper's tables) are
:mod:`robusthide.cli.cmd_latent_lab`. See docs/latent.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robusthide import RobustHideError


def edit_args(p: argparse.ArgumentParser, iters: int = 1500, lr: float = 1e-3, lambda5: float = 1 / 48,
               title: str = "defaults are the paper's") -> None:
    g = p.add_argument_group(f"code editing (paper 004 eq. 1; {title})")
    g.add_argument("--iters", type=int, default=iters, help=f"Adam iterations on y (default {iters})")
    g.add_argument("--lr", type=float, default=lr, help=f"Adam learning rate (default {lr:g})")
    g.add_argument("--lambda1", type=float, default=None, help="MSE weight (default: codec lambda * 255^2)")
    g.add_argument("--lambda2", type=float, default=16.0, help="perceptual (1 - SSIM) weight (16)")
    g.add_argument("--lambda3", type=float, default=1.0, help="adversarial weight (1; no discriminator here)")
    g.add_argument("--lambda4", type=float, default=1 / 244, help="total-variation weight (1/244)")
    g.add_argument("--lambda5", type=float, default=lambda5,
                   help=f"message cross-entropy weight (1/{1 / lambda5:.4g})")
    g.add_argument("--ce-reduction", choices=["sum", "mean"], default="sum",
                   help="message cross-entropy summed over the bits (default) or averaged (docs/latent.md)")
    g.add_argument("--rounding", choices=["noise", "ste"], default="noise",
                   help="rounding relaxation: additive uniform noise (paper) or straight-through")
    g.add_argument("--lattice", type=int, default=0, metavar="ROUNDS",
                   help="then at most ROUNDS greedy steps on the rounded latent that the coder sends (ours; "
                        "0 = none, the paper's; scale-hyperprior codecs; docs/results/latent-lattice.md)")


def edit_cfg(a: argparse.Namespace):
    from robusthide.latent.editing import EditConfig

    if a.iters < 0:
        raise RobustHideError("--iters must be >= 0")
    if a.lattice < 0:
        raise RobustHideError("--lattice must be >= 0")
    return EditConfig(iters=a.iters, lr=a.lr, lambda1=a.lambda1, lambda2=a.lambda2, lambda3=a.lambda3,
                      lambda4=a.lambda4, lambda5=a.lambda5, rounding=a.rounding,
                      ce_reduction=a.ce_reduction, lattice=a.lattice)


def codec_arg(spec: str | None, data: bytes | None = None):
    """``--codec``: a weights file, a zoo name, a shipped quality (``6`` or ``q6``: the zoo's latent codec of
    that quality), or None: the shipped codec that wrote ``data`` (a .rhl file being read), else the default."""
    import re

    from robusthide.latent.api import codec_for_file, codec_of_quality, resolve_codec

    if spec is None and data is not None:
        return codec_for_file(data)
    if spec is None or Path(spec).exists() or not re.fullmatch(r"[qQ]?\d+", spec):
        return resolve_codec(spec)
    return codec_of_quality(spec)


def _models(a: argparse.Namespace, decoder: bool = True, data: bytes | None = None):
    """The codec and decoder of a command; with a file's ``data`` and no flag, the shipped ones it was made with."""
    from robusthide.latent.api import decoder_for_file, resolve_decoder

    if not decoder:
        return codec_arg(a.codec, data), None
    if a.decoder is None and data is not None:
        return codec_arg(a.codec, data), decoder_for_file(data)
    return codec_arg(a.codec, data), resolve_decoder(a.decoder)


#: Largest .rhl file read (bytes): a latent file of an image at the 50 MP pixel limit is far smaller.
MAX_RHL_BYTES = 64 * 1024 * 1024


def _read_rhl(path: str) -> bytes:
    """The bytes of a .rhl file: a regular file only (no FIFO or device), at most :data:`MAX_RHL_BYTES`;
    ``-``: stdin."""
    from robusthide.cli.args import is_stdio
    from robusthide.io.safe import open_regular

    if is_stdio(path):
        data = sys.stdin.buffer.read(MAX_RHL_BYTES + 1)
        if not data:
            raise RobustHideError("-: no .rhl data on stdin")
    else:
        with open_regular(path) as f:
            data = f.read(MAX_RHL_BYTES + 1)
    if len(data) > MAX_RHL_BYTES:
        raise RobustHideError(f"{path}: larger than {MAX_RHL_BYTES // 2**20} MiB, not a robusthide latent file")
    return data


def _read_rgb(src: str):
    """IMAGE as uint8 H x W x 3 RGB (:func:`robusthide.io.images.read_image_rgb`); ``-`` reads the image's
    bytes from stdin, with the same checks and conversions (:meth:`robusthide.watermark.files.ImageFile.rgb8`)."""
    from robusthide.cli.args import is_stdio, read_image
    from robusthide.io.images import read_image_rgb

    return read_image(src).rgb8() if is_stdio(src) else read_image_rgb(src)


def _embed(a: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from robusthide.io.images import read_image_rgb
    from robusthide.latent import api
    from robusthide.latent import message as msg
    from robusthide.watermark.files import write_bytes_atomic

    if (a.message is None) == (a.bits is None):
        raise RobustHideError("give exactly one of -m MESSAGE or --bits BITS")
    if a.message == "":
        raise RobustHideError("empty message")
    bits, kind = (msg.text_to_bits(a.message, checksum=True), api.KIND_TEXT_CRC) if a.message is not None else (
        msg.parse_bits(a.bits), api.KIND_BITS)
    if len(bits) == 0:
        raise RobustHideError("empty message")
    out = Path(a.output)
    if out.suffix.lower() != ".rhl":
        raise RobustHideError(f"{out}: the output must be a .rhl file")
    arr = read_image_rgb(a.image)
    cover = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].float() / 255.0
    codec, dec = _models(a)
    data, info = api.embed(codec, dec, cover, bits, kind, a.key, edit_cfg(a))
    h, w = arr.shape[:2]
    if not info.recovered and not a.force:
        raise RobustHideError(
            f"the message does not read back from the bitstream (raw bit accuracy {100 * info.raw_accuracy:.1f} %);"
            f" nothing written to {out}: raise --iters / --lambda5, shorten the message, or pass --force")
    write_bytes_atomic(out, data, protect=[Path(a.image)])
    print(f"wrote {out}: {len(data)} bytes, {info.bpp:.3f} bpp ({h}x{w}); {len(bits)} message bits,"
          f" raw bit accuracy {100 * info.raw_accuracy:.1f} %, message {'verified' if info.recovered else 'NOT'}"
          " recovered from the file")
    if not info.recovered:
        print("robusthide: warning: the message does not read back (written anyway: --force)", file=sys.stderr)
        return 1
    return 0


def _extract(a: argparse.Namespace) -> int:
    from robusthide.latent import api
    from robusthide.latent import message as msg

    data = _read_rhl(a.file)
    codec, dec = _models(a, data=data)
    bits, kind = api.extract(codec, dec, data, a.key)
    if kind in (api.KIND_TEXT, api.KIND_TEXT_CRC) and not a.bits:
        print(msg.bits_to_text(bits, checksum=kind == api.KIND_TEXT_CRC))
    else:
        print("".join(str(int(b)) for b in bits))
    return 0


def _compress(a: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from robusthide.cli.args import is_stdio, write_stdout
    from robusthide.latent import api
    from robusthide.metrics import psnr
    from robusthide.watermark.files import write_bytes_atomic

    out = Path(a.output)
    if not is_stdio(out) and out.suffix.lower() != ".rhl":
        raise RobustHideError(f"{out}: the output must be a .rhl file (or - for stdout)")
    arr = _read_rgb(a.image)
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].float() / 255.0
    codec, _ = _models(a, decoder=False)
    data, info = api.compress_bytes(codec, x)
    quality = api.decode_bytes(codec, data)
    if is_stdio(out):
        write_stdout(data)
    else:
        write_bytes_atomic(out, data, protect=[] if is_stdio(a.image) else [Path(a.image)])
    h, w = arr.shape[:2]
    where = ".rhl to stdout" if is_stdio(out) else out
    print(f"wrote {where}: {info.file_bytes} bytes, {info.bpp:.4f} bpp ({h}x{w}; codec payload {info.payload_bpp:.4f}"
          f" bpp), PSNR {psnr(quality, x):.2f} dB", file=sys.stderr if is_stdio(out) else sys.stdout)
    return 0


def _decode(a: argparse.Namespace) -> int:
    from robusthide.cli.args import is_stdio, write_stdout
    from robusthide.io.images import write_image
    from robusthide.latent import api
    from robusthide.watermark.files import encode_image

    data = _read_rhl(a.file)
    codec, _ = _models(a, decoder=False, data=data)
    x = api.decode_bytes(codec, data)
    arr = (x[0].permute(1, 2, 0) * 255).round().byte().numpy()
    if is_stdio(a.output):  # PNG on stdout; the message goes to stderr
        write_stdout(encode_image(arr, "PNG"))
        print(f"wrote PNG to stdout ({arr.shape[0]}x{arr.shape[1]})", file=sys.stderr)
        return 0
    write_image(a.output, arr, overwrite_guard_src=None if is_stdio(a.file) else a.file)
    print(f"wrote {a.output} ({arr.shape[0]}x{arr.shape[1]})")
    return 0


def model_args(q: argparse.ArgumentParser, decoder: bool = True) -> None:
    """``--codec`` (and with ``decoder`` ``--decoder`` and ``--key``) of a latent subcommand."""
    q.add_argument("--codec", help="codec weights (.safetensors, ours or a CompressAI bmshj2018-hyperprior"
                                   " state dict), a zoo name, or a shipped quality (3, 5, 6 or q6); default: the"
                                   " shipped default (reading a .rhl file: the shipped codec that wrote it)")
    if decoder:
        q.add_argument("--decoder", help="steganography decoder: weights file or fnns-r:SEED[:D[:HIDDEN]]"
                                         " (default: the shipped one, else fnns-r:0)")
        q.add_argument("--key", type=int, default=0, help="message whitening key (default 0)")


def register(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser("latent", help="hide a message while compressing (learned codec, paper 004)")
    ls = p.add_subparsers(dest="latent_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 1)[1])

    e = ls.add_parser("embed", help="compress IMAGE into a .rhl bitstream carrying a message")
    e.add_argument("image")
    e.add_argument("-m", "--message", help="UTF-8 text to hide")
    e.add_argument("--bits", help="a bit string (0/1) to hide instead of text")
    e.add_argument("-o", "--output", required=True, help="output FILE.rhl")
    e.add_argument("--force", action="store_true",
                   help="write the file even when the message does not read back from it (exit status 1)")
    model_args(e)
    edit_args(e)
    e.set_defaults(func=_embed)

    x = ls.add_parser("extract", help="read the message of a .rhl file")
    x.add_argument("file", help=".rhl file; - reads it from stdin")
    x.add_argument("--bits", action="store_true", help="print bits even for a text message")
    model_args(x)
    x.set_defaults(func=_extract)

    c = ls.add_parser("compress", help="the codec alone: compress IMAGE into a .rhl bitstream (no message)")
    c.add_argument("image", help="input image; - reads it from stdin")
    c.add_argument("-o", "--output", required=True, help="output FILE.rhl; - writes it to stdout")
    model_args(c, decoder=False)
    c.set_defaults(func=_compress)

    d = ls.add_parser("decode", help="decode a .rhl file (from compress or embed) to an image")
    d.add_argument("file", help=".rhl file; - reads it from stdin")
    d.add_argument("-o", "--output", required=True, help="output image (.png recommended); - writes a PNG to stdout")
    model_args(d, decoder=False)
    d.set_defaults(func=_decode)

    from robusthide.cli.cmd_latent_lab import register as register_lab

    register_lab(ls)
