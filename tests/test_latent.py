"""Paper 004 (latent code editing): bitstream round trip, code editing, steganalysis, CLI (issue 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("constriction")

from robusthide import RobustHideError  # noqa: E402
from robusthide.latent import steganalysis as sa  # noqa: E402
from robusthide.latent.container import RhlFile  # noqa: E402
from robusthide.latent.editing import EditConfig, edit_latent  # noqa: E402
from robusthide.latent.models import (  # noqa: E402
    ScaleHyperprior,
    load_codec,
    load_compressai_state_dict,
    pad,
    save_codec,
)
from robusthide.latent.stegnet import load_decoder, random_decoder  # noqa: E402


@pytest.fixture(scope="module")
def codec_file(train_tiny_codec):
    """A tiny codec (N=16, M=192) trained for 30 steps: enough for a latent that drives its image."""
    return train_tiny_codec("codec", steps=30, batch=4)


@pytest.fixture(scope="module")
def codec(codec_file):
    return load_codec(codec_file)


def test_bitstream_round_trip_is_bit_exact(to_tensor, codec, photos):
    x = to_tensor(photos["astronaut"][100:180, 150:250])  # 80 x 100: padded to 128 x 128
    c = codec.compress(x)
    y_dec = codec.decompress_latent(c.y_string, c.z_string, c.z_shape)
    assert torch.equal(y_dec, c.y_hat)
    assert torch.equal(codec.synthesize(y_dec, (80, 100)), codec.synthesize(c.y_hat, (80, 100)))
    # escapes: latents far outside every table still code exactly
    y = codec.g_a(pad(x)).detach() * 40
    y[0, 0, 0, 0] = 20000.0
    c2 = codec.compress_latent(y)
    assert torch.equal(codec.decompress_latent(c2.y_string, c2.z_string, c2.z_shape), torch.round(y))
    assert len(c2.y_string) > len(c.y_string)


def test_code_editing_lowers_message_loss(to_tensor, codec, photos):
    x = to_tensor(photos["astronaut"][100:164, 200:264])
    dec = random_decoder(0)
    target = (torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    cfg = EditConfig(iters=10, lr=0.1, lambda1=0.0, lambda2=0.0, lambda4=0.0, lambda5=1000.0, ce_reduction="mean",
                     log_every=1)
    h = edit_latent(codec, dec, x, target, cfg).history
    assert h[-1]["msg_loss"] < h[0]["msg_loss"] - 0.02
    assert h[-1]["acc"] > h[0]["acc"] + 0.03


def test_paper_defaults(codec):
    cfg = EditConfig()
    assert (cfg.iters, cfg.lr, cfg.lambda2, cfg.lambda3) == (1500, 1e-3, 16.0, 1.0)
    assert cfg.lambda4 == pytest.approx(1 / 244) and cfg.lambda5 == pytest.approx(1 / 48)
    assert cfg.rounding == "noise" and cfg.lambda1 is None  # AUN; l1 from the codec's own lambda


def test_steganalysis_flags_lsb_not_clean(photos):
    for name in ("astronaut", "coffee"):
        clean = photos[name]
        stego = sa.lsb_embed(clean, rate=1.0, seed=3)
        fc, fs = sa.flags(sa.analyse(clean)), sa.flags(sa.analyse(stego))
        assert all(fs.values()), (name, sa.analyse(stego))
        assert not any(fc.values()), (name, sa.analyse(clean))


def test_compressai_state_dict_layout(codec):
    """A state dict in CompressAI's published bmshj2018-hyperprior layout loads (ParameterList names)."""
    sd = {}
    for k, v in codec.state_dict().items():
        for ours, theirs in (("_matrix", "_matrices."), ("_bias", "_biases."), ("_factor", "_factors.")):
            if k.startswith(f"entropy_bottleneck.{ours}"):
                k = f"entropy_bottleneck.{theirs}{k[len('entropy_bottleneck.') + len(ours):]}"
        sd[k] = v.clone()
    sd["entropy_bottleneck._quantized_cdf"] = torch.zeros(16, 10, dtype=torch.int32)
    sd["gaussian_conditional._offset"] = torch.zeros(64, dtype=torch.int32)
    assert "entropy_bottleneck._matrices.0" in sd
    m = load_compressai_state_dict(ScaleHyperprior(16, 192), sd)
    assert m.model_id() == codec.model_id()
    with pytest.raises(RobustHideError):
        load_compressai_state_dict(ScaleHyperprior(16, 192), {"g_a.0.weight": sd["g_a.0.weight"]})


def test_files_round_trip(codec, tmp_path):
    save_codec(codec, tmp_path / "c.safetensors")
    assert load_codec(tmp_path / "c.safetensors").model_id() == codec.model_id()
    assert load_decoder("fnns-r:0").decoder_id() == random_decoder(0).decoder_id()
    with pytest.raises(RobustHideError):
        load_codec(tmp_path / "missing.safetensors")


def test_text_checksum_round_trip_and_mismatch():
    from robusthide.latent.message import bits_to_text, text_to_bits

    bits = text_to_bits("héllo", checksum=True)
    assert len(bits) == 8 * (len("héllo".encode()) + 2) and bits_to_text(bits, checksum=True) == "héllo"
    assert bits_to_text(text_to_bits("héllo")) == "héllo"
    bits[3] ^= 1
    with pytest.raises(RobustHideError, match="CRC-16 mismatch"):
        bits_to_text(bits, checksum=True)
    with pytest.raises(RobustHideError, match="not whole bytes"):
        bits_to_text(bits[:-1], checksum=True)


def test_rhl_refuses_corrupt():
    r = RhlFile(64, 64, (1, 1), "00" * 8, "11" * 8, 16, 1, b"\x01\x02\x03\x04", b"\x05\x06\x07\x08")
    data = r.to_bytes()
    assert RhlFile.from_bytes(data) == r
    for bad in (b"PNG" + data[3:], data[:20], data[:-1] + bytes([data[-1] ^ 1])):
        with pytest.raises(RobustHideError):
            RhlFile.from_bytes(bad)


def test_cli_round_trip(codec_file, photos, tmp_path, capsys):
    from PIL import Image

    from robusthide.cli.main import main

    img = tmp_path / "cover.png"
    Image.fromarray(np.ascontiguousarray(photos["coffee"][100:164, 200:264])).save(img)
    rhl = tmp_path / "stego.rhl"
    common = ["--codec", str(codec_file), "--decoder", "fnns-r:0", "--key", "7"]
    edit = ["--iters", "25", "--lr", "0.1", "--lambda1", "0", "--lambda2", "0", "--lambda4", "0", "--lambda5", "1000",
            "--ce-reduction", "mean"]
    assert main(["latent", "embed", str(img), "-m", "hi", "-o", str(rhl), *common, *edit]) == 0
    capsys.readouterr()
    assert main(["latent", "extract", str(rhl), *common]) == 0
    assert capsys.readouterr().out.strip() == "hi"
    # the text carries a CRC-16: read with the wrong key, it is refused instead of printed as garbage
    assert main(["latent", "extract", str(rhl), *common[:-1], "8"]) == 2
    assert "does not verify (CRC-16 mismatch)" in capsys.readouterr().err
    out = tmp_path / "decoded.png"
    assert main(["latent", "decode", str(rhl), "-o", str(out), "--codec", str(codec_file)]) == 0
    assert np.asarray(Image.open(out)).shape == (64, 64, 3)
    bad = tmp_path / "bad.rhl"
    bad.write_bytes(rhl.read_bytes()[:-3])
    capsys.readouterr()
    assert main(["latent", "extract", str(bad), *common]) == 2
    assert "corrupt .rhl file" in capsys.readouterr().err
    assert main(["latent", "embed", str(img), "-m", "x" * 600, "-o", str(rhl), *common, "--iters", "1"]) == 2
    assert "message too long" in capsys.readouterr().err
    lat = tmp_path / "lattice.rhl"  # the greedy lattice pass after the edit: the file still reads back
    assert main(["latent", "embed", str(img), "-m", "hi", "-o", str(lat), *common, *edit, "--lattice", "5"]) == 0
    capsys.readouterr()
    assert main(["latent", "extract", str(lat), *common]) == 0
    assert capsys.readouterr().out.strip() == "hi"
    assert main(["latent", "embed", str(img), "-m", "hi", "-o", str(lat), *common, "--lattice", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "robusthide: error: --lattice must be >= 0"


def test_pickled_codec_checkpoint_is_refused(tmp_path):
    from robusthide.latent.models import load_codec

    p = tmp_path / "bmshj2018-hyperprior.pth.tar"
    p.write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(RobustHideError, match="must be a .safetensors file"):
        load_codec(p)


def test_cli_round_trip_with_shipped_weights(photos, tmp_path, capsys):
    """The default codec and decoder (zoo: latent-hp-q6, latent-hp-q6-decoder)
    carry a short text message through a real .rhl bitstream on a 64 x 64 fixture crop: embed, extract,
    decode."""
    from PIL import Image

    from robusthide.cli.main import main
    from robusthide.latent.api import DEFAULT_CODEC, DEFAULT_DECODER

    assert DEFAULT_CODEC.is_file() and DEFAULT_DECODER.is_file()
    img = tmp_path / "cover.png"
    Image.fromarray(np.ascontiguousarray(photos["astronaut"][0:64, 150:214])).save(img)
    rhl = tmp_path / "stego.rhl"
    # lr 1e-1: at lr 1e-2 x 300 the raw accuracy is ~58 % and whether all 32 bits (text + CRC) survive the vote
    # on this crop is a coin flip (issue 24 item 3 moved it from 0 to 1 wrong bit); lr 1e-1 reads ~66 %
    assert main(["latent", "embed", str(img), "-m", "hi", "-o", str(rhl), "--iters", "300", "--lr", "1e-1"]) == 0
    assert "message verified recovered" in capsys.readouterr().out
    assert main(["latent", "extract", str(rhl)]) == 0
    assert capsys.readouterr().out.strip() == "hi"
    out = tmp_path / "decoded.png"
    assert main(["latent", "decode", str(rhl), "-o", str(out)]) == 0
    assert np.asarray(Image.open(out)).shape == (64, 64, 3)


def test_extract_finds_the_shipped_decoder_a_file_was_made_with(photos, tmp_path, capsys):
    """Files made with the earlier default decoder (latent-fnns-decoder) still read with no --decoder: extract
    picks the shipped decoder whose id is in the header; a file of an unshipped decoder gets a one-line error."""
    from robusthide.cli.main import main
    from robusthide.latent import api

    codec = api.resolve_codec(None)
    x = torch.from_numpy(np.ascontiguousarray(photos["astronaut"][0:64, 150:214])).permute(2, 0, 1)[None] / 255.0
    bits = np.random.default_rng(1).integers(0, 2, 16).astype(np.uint8)
    for name, iters in (("latent-fnns-decoder", 300), ("fnns-r:3", 1)):
        data, info = api.embed(codec, api.resolve_decoder(name), x.float(), bits, cfg=EditConfig(iters=iters, lr=1e-1))
        (tmp_path / "s.rhl").write_bytes(data)
        code = main(["latent", "extract", str(tmp_path / "s.rhl"), "--bits"])
        out, err = capsys.readouterr()
        if name == "fnns-r:3":
            assert code == 2 and "which is not a shipped one: pass its weights with --decoder" in err
            assert len(err.strip().splitlines()) == 1
        else:
            assert info.recovered and code == 0 and out.strip() == "".join(map(str, bits))


def test_embed_that_does_not_read_back_writes_nothing(codec_file, photos, tmp_path, capsys):
    """One editing iteration cannot carry a message: a one-line error, exit 2, no file (unless --force)."""
    from PIL import Image

    from robusthide.cli.main import main

    img = tmp_path / "cover.png"
    Image.fromarray(np.ascontiguousarray(photos["coffee"][100:164, 200:264])).save(img)
    rhl = tmp_path / "stego.rhl"
    argv = ["latent", "embed", str(img), "-m", "a longer message", "-o", str(rhl), "--codec", str(codec_file),
            "--decoder", "fnns-r:0", "--iters", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "does not read back" in err and "nothing written" in err and len(err.strip().splitlines()) == 1
    assert not rhl.exists()
    assert main([*argv, "--force"]) == 1 and rhl.is_file()
    capsys.readouterr()
    assert main(["latent", "extract", str(rhl), "--codec", str(codec_file), "--decoder", "fnns-r:0"]) == 2
    assert "does not verify" in capsys.readouterr().err
    assert main([*argv[:4], "", *argv[5:]]) == 2 and "empty message" in capsys.readouterr().err
