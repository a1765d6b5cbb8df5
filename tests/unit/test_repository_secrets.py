"""No secret is committed: detect-secrets scans every tracked file (CI runs this with the tests)."""

import json
import subprocess
import sys
from pathlib import Path

from gcpipe.core.config import PROJECT_ROOT


def test_no_tracked_file_holds_a_secret():
    files = subprocess.run(
        ["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    scanner = Path(sys.executable).parent / "detect-secrets"
    result = subprocess.run(
        [str(scanner), "scan", *files],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    findings = {
        path: [(f["type"], f["line_number"]) for f in hits]
        for path, hits in json.loads(result.stdout)["results"].items()
    }
    assert findings == {}, (
        f"possible secrets (mark a deliberate test value with `# pragma: allowlist secret`): {findings}"
    )
