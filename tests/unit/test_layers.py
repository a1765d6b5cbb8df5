"""The dependency rule of the code base, read from every import (``ast``: module level and inside functions).

    app (the shell), and every capability's cli.py
      -> orchestration (and the DAG files)
        -> flows
          -> capabilities: warehouse, spark, deploy, datagen, pipelines, spark_jobs
            -> local (the local stack)
              -> core

A module imports its own layer or the layers below, never above; no import circle, between modules or
between the capability packages; the core never reaches the local stack, and the code that runs on
Dataflow and Dataproc (pipelines/, spark_jobs/) imports only the core and the warehouse's loads and names.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

from gcpipe.core.config import PROJECT_ROOT

# package prefix -> layer rank; the longest matching prefix wins
LAYERS = {
    "gcpipe.core": 0,
    "gcpipe.local": 1,
    "gcpipe.warehouse": 2,
    "gcpipe.spark": 2,
    "gcpipe.deploy": 2,
    "gcpipe.datagen": 2,
    "pipelines": 2,
    "spark_jobs": 2,
    "gcpipe.flows": 3,
    "gcpipe.orchestration": 4,
    "dags": 4,
    "gcpipe.app": 5,
}
SHELL = 5
# What the code shipped to Dataflow workers and Dataproc clusters may import of gcpipe.
SHIPPED = ("pipelines", "spark_jobs")
SHIPPED_MAY_IMPORT = ("gcpipe.core", "gcpipe.warehouse.load", "gcpipe.warehouse.params")


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _modules() -> dict[str, Path]:
    found = {}
    for top in ("gcpipe", "pipelines", "spark_jobs", "dags"):
        for path in (PROJECT_ROOT / top).rglob("*.py"):
            if not path.name.endswith("_test.py"):
                found[_module_name(path)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module an import names (``gcpipe.core.config.load_config`` -> ``gcpipe.core.config``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                ).strip(".")
            names = [f"{base}.{alias.name}" for alias in node.names]  # a module, or a name inside base
        else:
            continue
        found |= {target for target in map(_resolve, names) if target and target != module}
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def layer(module: str) -> int:
    if module.endswith(".cli"):  # a capability's command line is part of the shell
        return SHELL
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None)
    if prefix is None:
        return 0 if module == "gcpipe" else SHELL
    return LAYERS[prefix]


def _package(module: str) -> str:
    return max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=module)


def test_every_module_has_a_layer():
    unplaced = [m for m in MODULES if m != "gcpipe" and not any(m.startswith(p) for p in LAYERS)]
    assert not unplaced, f"modules outside every layer (add them to LAYERS or move them): {unplaced}"


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in graph.items()
        for target in targets
        if layer(target) > layer(module)
    ]


def circle(graph: dict[str, set[str]]) -> list[str]:
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        return err.args[1]
    return []


def test_no_module_imports_a_layer_above_its_own():
    assert not upward_imports(GRAPH), "\n".join(upward_imports(GRAPH))


def test_no_import_circle_between_modules():
    assert not circle(GRAPH), f"import circle: {' -> '.join(circle(GRAPH))}"


def test_no_import_circle_between_packages():
    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        if layer(module) == SHELL and module.endswith(".cli"):
            continue  # the shell's modules sit in the packages they command
        packages.setdefault(_package(module), set()).update(
            _package(t) for t in targets if _package(t) != _package(module)
        )
    assert not circle(packages), f"import circle between packages: {' -> '.join(circle(packages))}"


def test_the_core_never_reaches_the_local_stack():
    assert not [
        (module, target)
        for module, targets in GRAPH.items()
        if module.startswith("gcpipe.core")
        for target in targets
        if not target.startswith("gcpipe.core")
    ]


def test_code_shipped_to_dataflow_and_dataproc_imports_only_what_ships_with_it():
    outside = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if module.startswith(SHIPPED)
        for target in targets
        if target.startswith("gcpipe") and not target.startswith(SHIPPED_MAY_IMPORT)
    ]
    assert not outside, "\n".join(outside)


def test_the_checks_catch_an_upward_import_and_a_circle():
    """The checks themselves, on a made-up graph: the core importing the stack, deploy and spark in a circle."""
    made_up = {
        "gcpipe.core.clients": {"gcpipe.local.stack"},
        "gcpipe.local.stack": set(),
        "gcpipe.deploy.plans": {"gcpipe.spark.jobs"},
        "gcpipe.spark.jobs": {"gcpipe.deploy.plans"},
    }
    assert upward_imports(made_up) == ["gcpipe.core.clients (layer 0) imports gcpipe.local.stack (layer 1)"]
    assert set(circle(made_up)) == {"gcpipe.deploy.plans", "gcpipe.spark.jobs"}
    assert layer("gcpipe.warehouse.cli") == SHELL and layer("gcpipe.app.demo") == SHELL
    assert _resolve("gcpipe.core.config.load_config") == "gcpipe.core.config"
