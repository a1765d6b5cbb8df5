"""The Terraform in infra/terraform, checked offline.

Terraform itself evaluates the catalog module (it has no provider, so `terraform apply` runs here) and
the tables it yields are compared with what gcpipe.core.schemas reads from the same files. The rest parses
the HCL (python-hcl2): no bucket is public, no primitive role, every reference resolves (what
`terraform validate` would catch, which needs the provider plugins), and the names file agrees with the
variables.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest
from hcl2.utils import SerializationOptions

from gcpipe.core.config import PROJECT_ROOT, Config
from gcpipe.core.schemas import SCHEMA_DIR, TABLES_FILE, load_tables
from gcpipe.deploy.naming import NAMES_FILE, TERRAFORM_DIR, Deployment

TERRAFORM = PROJECT_ROOT / ".venv-infra" / "bin" / "terraform"
PRIMITIVE_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
PUBLIC_MEMBERS = {"allUsers", "allAuthenticatedUsers"}
_OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


def parse(path: Path) -> dict:
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=_OPTIONS)


def module_dirs() -> list[Path]:
    return [TERRAFORM_DIR, *sorted(p for p in (TERRAFORM_DIR / "modules").iterdir() if p.is_dir())]


def blocks(directory: Path, kind: str) -> list[dict]:
    found = []
    for path in sorted(directory.glob("*.tf")):
        found += parse(path).get(kind, [])
    return found


def resources(directory: Path = TERRAFORM_DIR, recursive: bool = True) -> list[tuple[str, str, dict]]:
    """(type, name, body) of every resource."""
    dirs = module_dirs() if recursive else [directory]
    return [
        (kind.strip('"'), name.strip('"'), body)
        for d in dirs
        for block in blocks(d, "resource")
        for kind, named in block.items()
        for name, body in named.items()
    ]


def strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


# -- Terraform's own evaluation of the table catalog -------------------------------------------------


def terraform_catalog(tmp_path: Path, catalog: Path = TABLES_FILE, schemas: Path = SCHEMA_DIR) -> dict:
    """Apply the provider-free catalog module with Terraform and return its `tables` output."""
    if not TERRAFORM.exists():
        pytest.fail("Terraform of the infra checks is missing: run `make setup-infra`.")
    root = tmp_path / "catalog-root"
    root.mkdir()
    (root / "main.tf").write_text(
        f'module "catalog" {{\n  source = "{TERRAFORM_DIR / "modules" / "catalog"}"\n'
        f'  catalog_file = "{catalog}"\n  schema_dir = "{schemas}"\n}}\n'
        'output "tables" {\n  value = module.catalog.tables\n}\n'
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    for args in (
        ["init", "-input=false", "-no-color"],
        ["apply", "-auto-approve", "-input=false", "-no-color"],
    ):
        done = subprocess.run(
            [TERRAFORM, *args], cwd=root, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [TERRAFORM, "output", "-json", "tables"], cwd=root, env=env, capture_output=True, text=True
    )
    return json.loads(done.stdout)


def catalog_drift(terraform_tables: dict) -> list[str]:
    """Each way Terraform's tables differ from gcpipe.core.schemas' reading of sql/, one sentence each."""
    problems = []
    expected = load_tables()
    for name in sorted(set(expected) ^ set(terraform_tables)):
        problems.append(f"{name}: in {'sql/tables.json' if name in expected else 'Terraform'} only")
    for name in sorted(set(expected) & set(terraform_tables)):
        spec, table = expected[name], terraform_tables[name]
        if json.loads(table["schema"]) != json.loads((SCHEMA_DIR / f"{spec.schema.name}.json").read_text()):
            problems.append(f"{name}: schema differs from sql/schemas/{spec.schema.name}.json")
        if [f["name"] for f in json.loads(table["schema"])] != spec.schema.names:
            problems.append(f"{name}: columns differ from gcpipe.core.schemas")
        if table["dataset_key"] != spec.dataset_key:
            problems.append(f"{name}: dataset {table['dataset_key']} instead of {spec.dataset_key}")
        if list(table["clustering"]) != list(spec.clustering):
            problems.append(f"{name}: clustering {table['clustering']} instead of {list(spec.clustering)}")
        want = None
        if spec.partition:
            days = spec.partition.get("expiration_days")
            want = {
                "field": spec.partition["field"],
                "type": spec.partition.get("granularity", "DAY"),
                "expiration_ms": days * 86_400_000 if days else None,
            }
        if table["partition"] != want:
            problems.append(f"{name}: partition {table['partition']} instead of {want}")
        if table["description"] != spec.description:
            problems.append(f"{name}: description differs")
    return problems


def test_terraform_creates_every_catalog_table_from_its_schema_file(tmp_path):
    tables = terraform_catalog(tmp_path)
    assert catalog_drift(tables) == []
    # Spot check what the comparison rests on: a nested, repeated schema and a partition expiry.
    hits = next(f for f in json.loads(tables["ga_sessions"]["schema"]) if f["name"] == "hits")
    assert hits["mode"] == "REPEATED" and hits["fields"]
    assert tables["ride_events"]["partition"] == {
        "field": "timestamp",
        "type": "DAY",
        "expiration_ms": 30 * 86_400_000,
    }


def test_a_schema_that_diverges_from_terraform_is_caught(tmp_path):
    """Terraform run on a changed copy of sql/ differs from the project's sql/: the check names the table."""
    changed = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, changed)
    trips = json.loads((changed / "taxi_trips.json").read_text())
    trips.append({"name": "tip_percent", "type": "FLOAT", "mode": "NULLABLE"})
    (changed / "taxi_trips.json").write_text(json.dumps(trips))
    catalog = json.loads(TABLES_FILE.read_text())
    catalog["ratings"]["clustering"] = ["user_id"]
    (tmp_path / "tables.json").write_text(json.dumps(catalog))

    problems = catalog_drift(terraform_catalog(tmp_path, tmp_path / "tables.json", changed))

    assert "taxi_trips: schema differs from sql/schemas/taxi_trips.json" in problems
    assert "taxi_trips: columns differ from gcpipe.core.schemas" in problems
    assert "ratings: clustering ['user_id'] instead of []" in problems
    assert len(problems) == 3, problems


def test_bigquery_tables_take_their_schema_only_from_the_catalog():
    tables = [(name, body) for kind, name, body in resources() if kind == "google_bigquery_table"]
    assert tables, "no google_bigquery_table in infra/terraform"
    for name, body in tables:
        assert body["for_each"] == "${module.catalog.tables}", name
        assert body["schema"] == "${each.value.schema}", name
        assert body["clustering"].startswith("${length(each.value.clustering)"), name
    catalog_call = next(b["catalog"] for b in blocks(TERRAFORM_DIR, "module") if "catalog" in b)
    assert catalog_call["catalog_file"] == "${local.repo_root}/sql/tables.json"
    assert catalog_call["schema_dir"] == "${local.repo_root}/sql/schemas"
    assert (TERRAFORM_DIR / "../../sql/tables.json").resolve() == TABLES_FILE  # local.repo_root
    # No schema typed in HCL: the one place that reads a schema file is the catalog module.
    schema_reads = [s for _, _, body in resources() for s in strings(body) if "schemas" in s]
    assert schema_reads == []


# -- security ------------------------------------------------------------------------------------------


def test_no_bucket_is_public():
    buckets = [(name, body) for kind, name, body in resources() if kind == "google_storage_bucket"]
    assert buckets
    for name, body in buckets:
        assert body["public_access_prevention"] == "enforced", name
        assert body["uniform_bucket_level_access"] is True, name
    for kind, name, body in resources():
        if "_iam_" in kind:
            members = strings({k: v for k, v in body.items() if k in ("member", "members")})
            assert not any(m in PUBLIC_MEMBERS for m in members), f"{kind}.{name} grants {members}"
    # Every bucket of the platform comes from the private-bucket module.
    calls = [b for block in blocks(TERRAFORM_DIR, "module") for b in block.values()]
    assert {c["source"] for c in calls if "name" in c} == {"./modules/bucket"}


def test_no_service_account_has_a_primitive_role():
    every_string = [s for d in module_dirs() for path in d.glob("*.tf") for s in strings(parse(path))]
    roles = {r for s in every_string for r in re.findall(r"roles/[A-Za-z0-9.]+", s)}
    assert roles, "no role found: the parse went wrong"
    assert roles.isdisjoint(PRIMITIVE_ROLES), roles & PRIMITIVE_ROLES
    # Project-wide bindings go to the platform's own service accounts only.
    for kind, name, body in resources():
        if kind == "google_project_iam_member":
            assert body["member"] == "${local.sa_members[each.value.workload]}", name


def test_every_checkov_skip_says_why():
    skips = []
    for path in [*PROJECT_ROOT.glob("infra/**/*.tf"), *PROJECT_ROOT.glob("infra/**/Dockerfile")]:
        skips += re.findall(r"checkov:skip=(\w+)(?::(.*))?", path.read_text())
    assert skips, "no skip found: the pattern went wrong"
    for check, reason in skips:
        assert len((reason or "").split()) >= 8, f"{check} is skipped without a reason"


# -- what `terraform validate` would catch -------------------------------------------------------------

_REFERENCE = re.compile(r"\b(var|local|module|data\.\w+|google_\w+)\.(\w+)")


@pytest.mark.parametrize("directory", module_dirs(), ids=lambda d: d.name)
def test_every_reference_resolves(directory):
    declared: dict[str, set[str]] = {"var": set(), "local": set(), "module": set()}
    body_strings = []
    for path in directory.glob("*.tf"):
        tree = parse(path)
        for block in tree.get("variable", []):
            declared["var"] |= set(block)
        for block in tree.get("locals", []):
            declared["local"] |= set(block)
        for block in tree.get("module", []):
            declared["module"] |= set(block)
        for kind in ("resource", "data"):
            for block in tree.get(kind, []):
                for type_, named in block.items():
                    key = type_.strip('"') if kind == "resource" else f"data.{type_.strip(chr(34))}"
                    declared.setdefault(key, set()).update(n.strip('"') for n in named)
        body_strings += strings({k: v for k, v in tree.items() if k != "variable"})
    for text in body_strings:
        for kind, name in _REFERENCE.findall(text):
            if kind.startswith("google_") and kind not in declared:
                continue  # a provider attribute such as google_storage_bucket in a description
            assert name in declared.get(kind, set()), f"{directory.name}: {kind}.{name} is not declared"


def test_names_file_and_deploy_variables_match_the_declared_variables():
    variables = {name: body for block in blocks(TERRAFORM_DIR, "variable") for name, body in block.items()}
    names = json.loads(NAMES_FILE.read_text())
    required = {name for name, body in variables.items() if "default" not in body}
    assert set(names) <= set(variables)
    assert required - set(names) == {"project"}  # project comes from gcpipe.core.config with the rest
    tfvars = Deployment(Config(target="gcp", project="acme-data-prod"), names=names).tfvars()
    assert set(tfvars) <= set(variables)
    assert set(names["service_accounts"]) == {"dataflow", "dataproc", "composer", "build"}
