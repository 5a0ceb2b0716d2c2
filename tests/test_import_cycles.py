"""No package imports itself in a circle: every module can be read, tested and moved without the
modules that import it. import-linter's contracts cover the arrows between packages; this covers the
modules inside each one (imports inside functions count: grimp reads them all)."""

from __future__ import annotations

import grimp
import pytest

PACKAGES = ("api", "worker", "jobstore", "ocec_engine", "ocec_jobs", "benchmarks", "migrations", "tests")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def cycles(graph: grimp.ImportGraph, package: str) -> list[str]:
    """Each circle through a module of ``package``, as ``a -> b -> … -> a`` (once per circle)."""
    modules = graph.find_descendants(package) | {package}
    found: dict[frozenset[str], str] = {}
    for module in sorted(modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None and frozenset(back) not in found:
                found[frozenset(back)] = " -> ".join((module, *back))
    return sorted(found.values())


@pytest.mark.parametrize("package", PACKAGES)
def test_package_has_no_import_cycle(graph: grimp.ImportGraph, package: str) -> None:
    assert cycles(graph, package) == []


def test_a_circle_of_three_modules_is_found() -> None:
    graph = grimp.ImportGraph()
    graph.add_module("pkg")
    for importer, imported in [
        ("pkg.app", "pkg.signals"),
        ("pkg.signals", "pkg.reaper"),
        ("pkg.reaper", "pkg.app"),
    ]:
        graph.add_import(importer=importer, imported=imported)
    graph.add_import(importer="pkg.app", imported="pkg.settings")  # a plain arrow is no circle

    assert cycles(graph, "pkg") == ["pkg.app -> pkg.signals -> pkg.reaper -> pkg.app"]
