"""Each stage's ``__all__`` names exactly what it exports, and every name imports."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import mlwright


def _packages() -> list[str]:
    names = ["mlwright"]
    for info in pkgutil.walk_packages(mlwright.__path__, "mlwright."):
        leaf = info.name.rsplit(".", 1)[-1]
        if info.ispkg and not leaf.startswith("_"):
            names.append(info.name)
    return names


@pytest.mark.parametrize("package", _packages())
def test_all_names_are_importable(package):
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    if exported is None:
        pytest.skip(f"{package} has no public names yet")
    for name in exported:
        assert getattr(module, name) is not None, f"{package}.{name}"
    assert len(exported) == len(set(exported)), f"duplicate names in {package}.__all__"
