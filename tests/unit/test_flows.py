"""The flow registry is the one list of the flows: what it names exists, and the demo and the README follow it
(the DAGs: tests/dags/test_flow_dags.py)."""

from __future__ import annotations

import re

import pytest

from gcpipe.app.demo import FLOW_STAGES, STAGES
from gcpipe.core.config import PROJECT_ROOT
from gcpipe.deploy.naming import TEMPLATES
from gcpipe.flows.registry import BEAM, FLOWS, SPARK, STREAMING, Step, flow, markdown_table
from gcpipe.spark.jobs import JOBS


@pytest.mark.parametrize("f", FLOWS, ids=lambda f: f.name)
def test_everything_a_flow_names_exists(f):
    assert (PROJECT_ROOT / "dags" / f"{f.dag}.py").is_file()
    for path in [*f.code, *f.sql_files, *f.tests]:
        assert (PROJECT_ROOT / path).exists(), f"{f.name} names {path}, which does not exist"
    assert len({s.name for s in f.steps}) == len(f.steps), f"{f.name} has two steps of one name"
    for step in f.steps:
        if step.kind in (BEAM, STREAMING):
            assert step.runs in TEMPLATES.values(), step
        if step.kind == SPARK:
            assert step.runs in JOBS, step


def test_the_demo_runs_one_stage_per_flow_in_the_registry_order():
    assert set(FLOW_STAGES) == {f.name for f in FLOWS}
    titles = [stage.name for stage in STAGES]
    assert [t for t in titles if t in {f.title for f in FLOWS}] == [f.title for f in FLOWS]


def test_the_readme_flow_table_is_the_registry_s():
    readme = (PROJECT_ROOT / "README.md").read_text()
    found = re.search(r"<!-- flows: .*? -->\n(.*?)<!-- end flows -->", readme, re.S)
    assert found, "README.md lost its flow table markers"
    assert found.group(1).strip() == markdown_table(), "README's flow table drifted: gcpipe flows --markdown"


def test_a_missing_step_or_flow_is_named_with_what_there_is():
    with pytest.raises(KeyError, match=r"no flow 'nope'.*batch_csv"):
        flow("nope")
    with pytest.raises(KeyError, match=r"no step 'nope'.*kdd_analysis"):
        flow("kdd").step("nope")


def test_step_parameters_cannot_be_changed_by_whoever_reads_them():
    step = Step("s", "sql", "x.sql", {"top_n": 3})
    with pytest.raises(TypeError):
        step.params["top_n"] = 4
