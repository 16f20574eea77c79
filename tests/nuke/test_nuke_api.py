"""The plug-in's contract with Nuke and with the host: every ``nuke.<name>`` it uses is in Nuke's published
Python API (the ``types-nuke`` stubs, Nuke 13.2) or listed here with the Foundry page it was checked against;
the fake implements each of them with methods the stubs have; no plug-in file imports torch, numpy,
OpenImageIO or engine modules."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import threading
from pathlib import Path

import fake_nuke
import pytest

PLUGIN = Path(__file__).parents[2] / "plugins" / "nuke"
# Names missing from the 13.2 stubs, each with the Foundry page it was checked against. Empty today: every name
# the plug-in uses is in the stubs (init.py no longer calls pluginAddPath, which the stubs lack).
DOCUMENTED: dict[str, str] = {}
HOST_SAFE_IMPORTS = {"__future__", "json", "os", "re", "sys", "threading", "time", "traceback", "tempfile", "typing",
                     "collections", "dataclasses", "nuke", "smite_client", "smite_nuke", "smite"}


def _stubs() -> Path:
    """The stub folder of the installed ``types-nuke`` (a dev dependency)."""
    return Path(importlib.metadata.distribution("types-nuke").locate_file("nuke-stubs"))


def _stub_trees() -> dict[str, ast.Module]:
    return {p.name: ast.parse(p.read_text()) for p in sorted(_stubs().glob("*.pyi"))}


def _top_level_names(trees) -> set[str]:
    names = set()
    for tree in trees.values():
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.Assign):
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _stub_classes(trees) -> dict[str, tuple[set[str], list[str]]]:
    """class name -> (its methods and attributes, its base class names)."""
    classes = {}
    for tree in trees.values():
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                members = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
                members |= {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)
                            and isinstance(n.target, ast.Name)}
                bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
                classes.setdefault(node.name, (members, bases))
    return classes


def _members(classes, name: str) -> set[str]:
    members, bases = classes.get(name, (set(), []))
    return set(members).union(*(_members(classes, b) for b in bases)) if bases else set(members)


def _plugin_files() -> list[Path]:
    return sorted(PLUGIN.rglob("*.py"))


def _nuke_names() -> set[str]:
    """Every attribute read from the ``nuke`` module in the plug-in's source."""
    names = set()
    for path in _plugin_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "nuke":
                names.add(node.attr)
    return names


def test_every_nuke_name_the_plugin_uses_is_published_and_faked():
    published = _top_level_names(_stub_trees())
    used = _nuke_names()
    assert {"executeInMainThread", "executeInMainThreadWithResult", "ProgressTask", "execute"} <= used
    unknown = sorted(n for n in used if n not in published and n not in DOCUMENTED)
    assert unknown == [], f"not in the types-nuke stubs nor documented here: {unknown}"
    assert all(hasattr(fake_nuke, n) for n in used), sorted(n for n in used if not hasattr(fake_nuke, n))


def test_the_fakes_classes_only_have_methods_real_nuke_has():
    classes = _stub_classes(_stub_trees())
    checked = 0
    for name, cls in vars(fake_nuke).items():
        if not inspect.isclass(cls) or name.startswith("_") or name not in classes:
            continue
        stub_members = _members(classes, name)
        public = {m for m in vars(cls) if not m.startswith("_")}
        extra = sorted(public - stub_members)
        assert extra == [], f"fake {name} has methods Nuke's {name} lacks: {extra}"
        checked += 1
    assert checked >= 15


def test_no_plugin_file_imports_torch_numpy_openimageio_or_engine_modules():
    for path in _plugin_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
                if node.module == "smite":
                    assert [a.name for a in node.names] == ["client"], f"{path}: only smite.client is host-safe"
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top in HOST_SAFE_IMPORTS, f"{path.relative_to(PLUGIN)} imports {module}"
                assert not module.startswith("smite.") or module == "smite.client", f"{path} imports {module}"


def test_the_fake_refuses_node_and_knob_calls_off_the_main_thread():
    node = fake_nuke.nodes.Read(file="/x/plate.####.exr")
    set_file = node["file"].setValue  # bound on the main thread, called there later
    errors = []

    def worker() -> None:
        for call in (lambda: node["file"].value(), lambda: node.name(), lambda: fake_nuke.nodes.Write(),
                     lambda: fake_nuke.execute(node, 1, 1)):
            try:
                call()
            except fake_nuke.ThreadError as exc:
                errors.append(str(exc))
        fake_nuke.executeInMainThread(set_file, ("/y/plate.####.exr",))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert len(errors) == 4 and all("main thread" in e for e in errors)
    assert node["file"].value() == "/x/plate.####.exr"  # queued, not run yet
    fake_nuke.pump()
    assert node["file"].value() == "/y/plate.####.exr"
    with pytest.raises(fake_nuke.ThreadError):
        fake_nuke.executeInMainThreadWithResult(node.name)


def test_menu_and_init_only_register_paths_and_menus(tmp_path):
    namespace = {"__file__": str(PLUGIN / "init.py")}
    exec((PLUGIN / "init.py").read_text(), namespace)
    exec((PLUGIN / "menu.py").read_text(), {})
    assert fake_nuke.menu("Nodes").findItem("SMITE/SMITE") == "import smite_nuke; smite_nuke.create_node()"
    assert fake_nuke._state.on_create and not fake_nuke.allNodes()
