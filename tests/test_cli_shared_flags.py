"""Issue 14 item 5, one CLI: `smite learn|segment` and `smite submit learn|segment` take the same flags with the
same names and meanings, and `smite segment --cryptomatte` writes the daemon's Cryptomatte layers."""

from __future__ import annotations

import argparse
import json

import numpy as np
import OpenImageIO as oiio
import pytest

from smite.cli import build_parser, main

SEGMENT_FLAGS = ("--frames", "--range", "-o", "--out", "--preset", "--window", "--overlap", "--tracker",
                 "--temperature", "--seed", "--edges", "--no-coarse-to-fine", "--colorspace", "--cryptomatte",
                 "--ranks")
LEARN_FLAGS = ("--frames", "--refs", "--masks", "--matte", "--names", "--steps", "--seed", "--overwrite",
               "--colorspace")


def _command(*names: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in names:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return parser


def _described(parser: argparse.ArgumentParser, flag: str) -> tuple:
    """What a flag is, except whether it is required (the daemon client also takes --files or returns inline)."""
    a = parser._option_string_actions[flag]
    return (tuple(a.option_strings), a.dest, type(a).__name__, a.type, a.choices, a.default, a.const, a.nargs,
            a.metavar, a.help)


@pytest.mark.parametrize(("command", "flags"), [("segment", SEGMENT_FLAGS), ("learn", LEARN_FLAGS)])
def test_in_process_and_daemon_commands_share_their_flags(command, flags):
    local, daemon = _command(command), _command("submit", command)
    for flag in flags:
        assert flag in local._option_string_actions and flag in daemon._option_string_actions, flag
        assert _described(local, flag) == _described(daemon, flag), flag


def test_submit_parses_the_shared_flags_into_daemon_settings(monkeypatch, tmp_path):
    from smite_server.cli import _segment_options

    from smite import config

    for setting in config.SETTINGS:  # no site configuration: the daemon's defaults
        monkeypatch.delenv(setting.env, raising=False)
    monkeypatch.setenv("SMITE_HOME", str(tmp_path))

    parser = build_parser()
    args = parser.parse_args(["submit", "segment", "--model", "hero", "--frames", "/p.####.exr", "--range",
                              "1001-1010", "-o", "/m.####.exr", "--preset", "fast", "--window", "8",
                              "--temperature", "0.5", "--no-coarse-to-fine", "--edges", "bilinear", "--cryptomatte",
                              "--ranks", "4", "--colorspace", "ACEScg"])
    assert (args.frames, args.range, args.out) == ("/p.####.exr", "1001-1010", "/m.####.exr")
    assert _segment_options(args) == {
        "cryptomatte": True, "priority": 0, "ranks": 4, "colorspace": "ACEScg",
        "settings": {"preset": "fast", "window": 8, "matte_temperature": 0.5, "coarse_to_fine": False,
                     "edges": "bilinear"}}
    bare = parser.parse_args(["submit", "segment", "--model", "hero", "--files", "/p.1001.exr"])
    assert _segment_options(bare) == {"cryptomatte": False, "priority": 0}  # the daemon's defaults
    monkeypatch.setenv("SMITE_PRESET", "fast")  # a site default applies to both forms
    assert _segment_options(bare)["settings"] == {"preset": "fast"}
    with pytest.raises(SystemExit):  # --frames and --files exclude each other
        parser.parse_args(["submit", "segment", "--model", "h", "--frames", "/p.####.exr", "--files", "/p.1.exr"])
    with pytest.raises(SystemExit):  # two ranks per RGBA layer
        parser.parse_args(["segment", "m.smite", "--frames", "p.####.exr", "-o", "m.####.exr", "--ranks", "3"])


def test_segment_cryptomatte_writes_the_layers(tiny_backbone, tmp_path):
    import torch

    from smite.io import cryptomatte
    from smite.io.images import read_mattes_exr
    from smite.model.partmodel import PartModel
    from smite.synthetic.shots import make_shot, write_shot

    paths = write_shot(make_shot(num_frames=2, size=(128, 128), num_parts=2, seed=5), tmp_path / "shot")
    names = ["background", "face", "hair"]  # untrained tokens: the layers are under test, not the mattes
    tokens = torch.randn(2, tiny_backbone.unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(0))
    model = PartModel(names, tokens, dict(tiny_backbone.base_kv), tiny_backbone.model_id, tiny_backbone.fingerprint,
                      tiny_backbone.resolution).save(tmp_path / "shot.smite")
    out = tmp_path / "mattes" / "m.####.exr"
    assert main(["segment", str(model), "--frames", paths["plates"], "-o", str(out), "--preset", "fast",
                 "--cryptomatte", "--ranks", "4", "--quiet"]) == 0
    path = tmp_path / "mattes" / "m.0002.exr"
    spec = oiio.ImageInput.open(str(path)).spec()
    layers = cryptomatte.channel_names("CryptoSmite", 4)
    assert [c for c in spec.channelnames if c.startswith("CryptoSmite")] == layers
    key = cryptomatte.layer_key("CryptoSmite")
    assert spec.getattribute(f"cryptomatte/{key}/name") == "CryptoSmite"
    assert json.loads(spec.getattribute(f"cryptomatte/{key}/manifest")) == cryptomatte.manifest(names)
    matte = read_mattes_exr(path)  # the matte layers as without --cryptomatte; the ranks decode back to them
    assert matte.metadata["frame"] == 2 and matte.part_names == names
    pixels = oiio.ImageBuf(str(path)).get_pixels(oiio.FLOAT)
    ranks = pixels[..., [list(spec.channelnames).index(c) for c in layers]]
    ids, coverage = ranks[..., 0::2], ranks[..., 1::2]
    for k, name in enumerate(names):  # a keyer's sum of a name's coverage over the ranks is its matte
        mine = np.where(ids.view(np.uint32) == np.uint32(cryptomatte.name_hash(name)), coverage, 0).sum(-1)
        np.testing.assert_allclose(mine, matte.alphas[k], atol=2e-3)  # the mattes are half floats
