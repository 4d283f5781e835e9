"""compute/drivers stays below Django (design §2) and libvirt stays inside one module."""
from __future__ import annotations

import ast
from pathlib import Path

import compute.drivers

DRIVERS = Path(compute.drivers.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_drivers_import_no_django_and_only_one_module_imports_libvirt() -> None:
    modules = sorted(DRIVERS.glob("**/*.py"))
    assert modules
    for path in modules:
        imported = _imports(path)
        assert "django" not in imported, f"{path.name} imports Django"
        assert not {"portal", "accounts", "storage"} & imported, f"{path.name} imports an app"
        if path.name != "libvirt_driver.py":
            assert not {"libvirt", "libvirt_qemu"} & imported, f"{path.name} imports libvirt"
