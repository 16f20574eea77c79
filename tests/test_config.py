"""Issue 14 item 6: environment variables and the TOML config file; flags win over both, env over the file."""

from pathlib import Path
from types import SimpleNamespace

import pytest

import smite.engine
import smite.model.partmodel
from smite import config
from smite.cli import main
from smite.engine import Engine
from smite.errors import SmiteError

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def site(monkeypatch, tmp_path):
    """A clean environment: no SMITE_* variables, SMITE_HOME in tmp (no config file yet)."""
    for s in config.SETTINGS:
        monkeypatch.delenv(s.env, raising=False)
    monkeypatch.setenv("SMITE_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    return tmp_path


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_precedence_flag_env_file_default(site, monkeypatch):
    assert config.value("preset") == "quality" and config.config_path() is None  # built-in default
    _write(site / "home" / "config.toml", 'preset = "fast"\ndevice = "cpu"\n')
    assert config.value("preset") == "fast"  # the file ($SMITE_HOME/config.toml)
    monkeypatch.setenv("SMITE_PRESET", "quality")
    assert config.value("preset") == "quality"  # the environment wins over the file
    assert config.value("preset", "fast") == "fast"  # a flag wins over both
    monkeypatch.setenv("SMITE_PRESET", "")
    assert config.value("preset") == "fast"  # an empty variable counts as unset
    assert config.sources()["device"] == {"value": "cpu", "from": str(site / "home" / "config.toml")}


def test_smite_config_names_the_file_and_must_exist(site, monkeypatch):
    _write(site / "home" / "config.toml", 'preset = "fast"\n')
    site_file = _write(site / "studio.toml", 'preset = "quality"\nbackbone = "/studio/sd21"\n')
    monkeypatch.setenv("SMITE_CONFIG", str(site_file))
    assert config.config_path() == site_file
    assert config.value("preset") == "quality" and config.value("backbone") == "/studio/sd21"
    monkeypatch.setenv("SMITE_CONFIG", str(site / "missing.toml"))
    with pytest.raises(SmiteError, match="does not exist") as err:
        config.value("preset")
    assert err.value.code == "not_found"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('prest = "fast"\n', "unknown key"),
        ('address = "tcp://farm:7461"\n', "environment variables only"),
        ("device = 0\n", "must be strings"),
        ('preset = "fast\n', "config file"),  # TOML syntax error
    ],
)
def test_bad_config_files_are_one_clear_error(site, text, message):
    _write(site / "home" / "config.toml", text)
    with pytest.raises(SmiteError, match=message) as err:
        config.value("preset")
    assert "\n" not in str(err.value)


def test_file_changes_are_seen(site):
    path = _write(site / "home" / "config.toml", 'preset = "fast"\n')
    assert config.value("preset") == "fast"
    _write(path, 'preset = "quality"\n# longer, so the size or mtime changes\n')
    import os

    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    assert config.value("preset") == "quality"


def test_engine_defaults_come_from_the_environment_and_flags_win(site, monkeypatch):
    monkeypatch.setenv("SMITE_DEVICE", "cpu")
    monkeypatch.setenv("SMITE_BACKBONE", "tiny")
    _write(site / "home" / "config.toml", 'precision = "fp32"\nbackbone = "/nowhere"\n')
    engine = Engine()
    assert (engine.device, engine.precision, engine.spec) == ("cpu", "fp32", "tiny")
    assert not engine.pinned  # a site default does not pin: part models still pick their own backbone
    flagged = Engine("some/model", "cuda:1", "bf16")
    assert (flagged.device, flagged.precision, flagged.spec) == ("cuda:1", "bf16", "some/model")


class Recorder:
    settings = None
    colorspace = None

    def __init__(self, *args, **kwargs) -> None:
        pass

    def segment_files(self, model, frames, output, settings, colorspace, progress=None, name=None,
                      cryptomatte_ranks=None):
        Recorder.settings, Recorder.colorspace = settings, colorspace
        return [Path(output)]


def test_cli_segment_settings_precedence(site, monkeypatch):
    monkeypatch.setattr(smite.engine, "Engine", Recorder)
    monkeypatch.setattr(smite.model.partmodel.PartModel, "load", staticmethod(lambda path: SimpleNamespace()))
    argv = ["segment", "x.smite", "--frames", str(site / "p.####.exr"), "--range", "1", "-o",
            str(site / "o.####.exr"), "--quiet"]
    _write(site / "home" / "config.toml", 'preset = "fast"\ntracker = "cotracker"\ncolorspace = "ACEScg"\n')
    assert main(argv) == 0
    assert (Recorder.settings.preset, Recorder.settings.tracker, Recorder.colorspace) == ("fast", "cotracker", "ACEScg")
    monkeypatch.setenv("SMITE_PRESET", "quality")
    monkeypatch.setenv("SMITE_COLORSPACE", "lin_rec709")
    assert main(argv) == 0
    assert (Recorder.settings.preset, Recorder.colorspace) == ("quality", "lin_rec709")
    assert main([*argv, "--preset", "fast", "--tracker", "flow", "--colorspace", "srgb_rec709_scene"]) == 0
    assert (Recorder.settings.preset, Recorder.settings.tracker) == ("fast", "flow")
    assert Recorder.colorspace == "srgb_rec709_scene"


def test_readme_documents_every_variable():
    assert config.env_table() in README.read_text()
