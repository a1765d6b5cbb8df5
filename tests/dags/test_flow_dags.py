"""Each flow's DAG is the registry's: a task for every step, of that name, running what the step runs."""

from __future__ import annotations

import pytest

from gcpipe.flows.registry import BEAM, CHECK, FLOWS, SQL
from tests.dags.conftest import parse


@pytest.fixture(scope="module", params=["local", "gcp"])
def dags(request):
    return request.param, parse(request.param)


@pytest.mark.parametrize("f", FLOWS, ids=lambda f: f.name)
def test_the_flow_s_dag_has_a_task_for_each_of_its_steps(dags, f):
    target, bag = dags
    dag = bag[f.dag]
    missing = [step.name for step in f.steps if step.name not in dag.task_ids]
    assert not missing, f"{target} {f.dag} lacks the steps {missing} of flow {f.name}"
    for step in f.steps:
        task = dag.get_task(step.name)
        if step.kind in (SQL, CHECK) and target == "local":
            arguments = task.op_kwargs["arguments"]
            assert arguments["path"] == step.runs, step.name
            assert dict(step.params).items() <= arguments["params"].items(), step.name
        if step.kind in (SQL, CHECK) and target == "gcp":
            label = step.runs.removesuffix(".sql").replace("/", "-")
            assert task.configuration["labels"]["sql"] == label, step.name
        if step.kind == BEAM:
            assert task.py_file == step.runs, step.name
