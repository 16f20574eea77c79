"""Issue 14 item 7: the docs stand alone (no reference outside the repository, links resolve), the flags they
name exist in `--help` and the learn/segment flags are all documented, the Python API example names real
functions, and the CHANGELOG states the part model format version."""

import argparse
import inspect
import re
from pathlib import Path

import pytest

from smite.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "docs" / "method.md", REPO / "CHANGELOG.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# Flags the docs name for other programs: `openjd run`, and the benches under bench/ (read from their parsers).
BENCH_FLAG = re.compile(r"add_argument\(\s*\"(--[a-z][a-z0-9-]*)\"")
OTHER_PROGRAMS = {"--step", "--run-dependencies"} | {
    flag for bench in (REPO / "bench").glob("*.py") for flag in BENCH_FLAG.findall(bench.read_text())}


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_anchor(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_do_not_send_readers_outside_the_repository(doc):
    text = doc.read_text()
    assert "../" not in text and "§" not in text and "shared folder" not in text
    for target in LINK.findall(text):
        assert not target.startswith(("http:", "https:", "/")), target
        file, _, anchor = target.partition("#")
        linked = (doc.parent / file).resolve() if file else doc
        assert linked.is_file() and REPO in linked.parents, target
        if anchor:
            assert anchor in _anchors(linked), target


def _flags(parser: argparse.ArgumentParser, name: str, out: dict[str, set[str]]) -> dict[str, set[str]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                _flags(sub, f"{name} {sub_name}", out)
        for option in action.option_strings:
            out.setdefault(option, set()).add(name)
    return out


def test_every_documented_flag_exists_and_learn_segment_flags_are_documented():
    flags = _flags(build_parser(), "smite", {})
    documented = set()
    for doc in DOCS:
        documented |= set(FLAG.findall(doc.read_text()))
    assert documented - set(flags) - OTHER_PROGRAMS == set(), "flags named in the docs but missing from every --help"
    for command in ("smite learn", "smite segment"):
        own = {f for f, where in flags.items() if command in where and f.startswith("--") and f != "--help"}
        assert own - documented == set(), f"`{command}` flags missing from README.md (document each new flag)"


def test_python_api_example_names_real_functions():
    from smite.engine import Engine
    from smite.model.partmodel import PartModel
    from smite.video.settings import SegmentSettings

    readme = (REPO / "README.md").read_text()
    example = readme.split("## Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    compile(example, "README example", "exec")  # valid Python
    assert {"frame_paths", "mask_sources", "part_names"} <= set(inspect.signature(Engine.learn_files).parameters)
    segment = inspect.signature(Engine.segment_files).parameters
    assert {"part_model", "frames", "output_pattern", "settings", "colorspace", "progress", "cancel"} <= set(segment)
    assert callable(PartModel.load) and "matte_temperature" in SegmentSettings.__dataclass_fields__


def test_changelog_states_the_part_model_format_version():
    from smite.model.partmodel import FORMAT_VERSION

    text = (REPO / "CHANGELOG.md").read_text()
    assert f"currently **{FORMAT_VERSION}**" in text and "smite_label.A" in text
