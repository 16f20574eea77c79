"""The plug-in's plain-Python pieces: knob parsing, names, where files go, one-sentence errors, transfer mode."""

from __future__ import annotations

import pytest
from smite_nuke import transfer
from smite_nuke.controller import connection_text, describe
from smite_nuke.settings import (
    NodeError,
    NodeSettings,
    frame_path,
    model_name,
    output_folder,
    parse_frames,
    parse_parts,
    parts_from_channels,
)

from smite.client import DaemonError, DaemonTimeout, Inline


def test_frames_parts_and_layers():
    assert parse_frames("1040, 1001 1050-1052") == [1001, 1040, 1050, 1051, 1052]
    with pytest.raises(NodeError, match="'10x' is not a frame number"):
        parse_frames("1001,10x")
    assert parse_parts("face hair,eyes") == ["face", "hair", "eyes"]
    for bad in ("Face", "1eye", "label", "background", "face face"):
        with pytest.raises(NodeError):
            parse_parts(bad)
    channels = ["rgba.red", "smite_face.alpha", "smite_label.alpha", "smite_background.alpha", "smite_hair.alpha",
                "smite_face.red", "depth.Z"]
    assert parts_from_channels(channels) == ["face", "hair"]


def test_names_and_folders_follow_the_script(tmp_path):
    script = str(tmp_path / "comp" / "sh010_v003.nk")
    s = NodeSettings(node="SMITE1", address="tcp://x:1", script=script)
    assert model_name(s) == "sh010_v003_SMITE1"
    assert output_folder(s) == str(tmp_path / "comp" / "smite" / "sh010_v003")
    s.model, s.output_folder = "/models/hero v2.smite", str(tmp_path / "out")
    assert model_name(s) == "hero_v2" and output_folder(s) == str(tmp_path / "out")
    unsaved = NodeSettings(node="SMITE1", address="tcp://x:1")
    with pytest.raises(NodeError, match="save the script first"):
        output_folder(unsaved)
    assert frame_path("/a/p.####.exr", 7) == "/a/p.0007.exr" and frame_path("/a/p.%05d.exr", 7) == "/a/p.00007.exr"


def test_errors_are_one_sentence():
    timeout = describe(DaemonTimeout("no reply\nat all"), "tcp://h:1")
    assert timeout.startswith("The SMITE daemon at tcp://h:1 did not answer") and "\n" not in timeout
    refused = describe(DaemonError("backbone_mismatch", "model learned on tiny, daemon serves sd21"), "a")
    assert refused == "The daemon refused: model learned on tiny, daemon serves sd21 (backbone_mismatch)."
    assert describe(DaemonError("cancelled", "job cancelled"), "a") == "Cancelled."
    assert describe(RuntimeError("Write1: can't write\nmore"), "a") == "RuntimeError: Write1: can't write."
    assert describe(NodeError("connect the roto input of SMITE1"), "a") == "Connect the roto input of SMITE1."
    hello = {"backbone": "sd21", "device": "cuda", "vram_free": 20 * 2**30, "vram_total": 24 * 2**30}
    assert connection_text(hello) == "sd21 on cuda, 20.0 of 24.0 GiB free"


def test_path_mode_needs_the_folder_inside_a_root(tmp_path):
    root = tmp_path / "shows"
    (root / "a").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    hello = {"features": ["path_io", "inline_io"], "roots": [str(root)]}
    assert transfer.choose_mode(hello, str(root / "a")) == "path"
    assert transfer.choose_mode(hello, str(tmp_path / "shows_other")) == "inline"  # a prefix is not inside
    assert transfer.choose_mode(hello | {"features": ["inline_io"]}, str(root / "a")) == "inline"
    plate = tmp_path / "elsewhere" / "p.0001.png"
    plate.write_bytes(b"png")
    assert transfer.source(str(plate), transfer.roots(hello)) == Inline("p.0001.png", b"png")
    inside = root / "a" / "p.0001.png"
    inside.write_bytes(b"png")
    assert transfer.source(str(inside), transfer.roots(hello)) == str(inside)
    dpx = tmp_path / "elsewhere" / "p.0001.dpx"
    dpx.write_bytes(b"dpx")
    assert not transfer.sendable(str(dpx))
    with pytest.raises(NodeError, match="cannot be sent inline"):
        transfer.source(str(dpx), [])
