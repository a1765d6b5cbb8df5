"""A stand-in for the GCE metadata server, on loopback, for the local target.

Beam and Google's client libraries call ``google.auth.default()`` in every process they start. With no
credentials that lookup retries for ~25 s and then waits on an interactive OAuth flow. Pointing
``GCE_METADATA_HOST``/``GCE_METADATA_IP`` here makes it answer at once with a dummy token, which the
emulators ignore. Run it as ``python -m gcpipe.local.metadata_server --port N --project P``.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

EMAIL = "local@gcpipe.invalid"


def _answers(project: str) -> dict[str, object]:
    account = {
        "email": EMAIL,
        "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
        "aliases": ["default"],
    }
    base = "/computeMetadata/v1/"
    return {
        "/": "ok",
        base + "project/project-id": project,
        base + "project/numeric-project-id": "1234",
        base + "instance/service-accounts/default/": account,
        base + f"instance/service-accounts/{EMAIL}/": account,
        base + "instance/service-accounts/default/email": EMAIL,
        base + "instance/service-accounts/default/token": {
            "access_token": "local-token",
            "expires_in": 3600,
            "token_type": "Bearer",
        },
        base + f"instance/service-accounts/{EMAIL}/token": {
            "access_token": "local-token",
            "expires_in": 3600,
            "token_type": "Bearer",
        },
    }


def make_server(host: str, port: int, project: str) -> ThreadingHTTPServer:
    answers = _answers(project)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            answer = answers.get(urlparse(self.path).path)
            if answer is None:
                self.send_response(404)
                self.send_header("Metadata-Flavor", "Google")
                self.end_headers()
                return
            is_json = not isinstance(answer, str)
            body = (json.dumps(answer) if is_json else answer).encode()
            self.send_response(200)
            self.send_header("Metadata-Flavor", "Google")
            self.send_header("Content-Type", "application/json" if is_json else "application/text")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, *args) -> None:  # quiet: one line per request would flood the log
            pass

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--project", required=True)
    args = parser.parse_args(argv)
    make_server(args.host, args.port, args.project).serve_forever()


if __name__ == "__main__":
    main()
