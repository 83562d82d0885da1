"""schemathesis hooks for scripts/contract.sh: supply what the schema cannot state.

- The daemon checks the filesystem: a spec's executable must exist and be executable, a bind source must
  exist. Every schema-valid path the generator makes up is replaced by a real one (schema-invalid paths
  are left alone, so negative cases stay negative).
- A bundle must be a real, valid `.orc` file: a schema-valid bundle path becomes a fixture bundle.
- GET /v1/events streams forever unless `follow=false` (documented); the run asks for the history.
"""
import os
import re

import schemathesis

EXECUTABLE = os.environ.get("CONTRACT_EXECUTABLE", "/bin/true")
BIND_SOURCE = os.environ.get("CONTRACT_BIND_SOURCE", "/etc/hostname")
# An accepted bundle (a RONL whose manifest supplies the id and forbids the network).
BUNDLE = os.environ.get("CONTRACT_BUNDLE", os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "orc-fixtures", "ronl.orc"))
_PATH = re.compile(r"/[^\x00]*")


def _valid_path(value):
    return isinstance(value, str) and len(value) <= 1023 and _PATH.fullmatch(value) is not None


def _is(ctx, method, path):
    operation = getattr(ctx, "operation", None)
    return operation is not None and operation.method.upper() == method and operation.path == path


@schemathesis.hook
def map_body(ctx, body):
    if _is(ctx, "POST", "/v1/runtimes") and isinstance(body, dict):
        if _valid_path(body.get("bundle")):
            # The bundle decides the id, the component's name and the network: a made-up component, hash or
            # id would be refused for what the file holds, which the schema cannot state.
            body["bundle"] = os.path.abspath(BUNDLE)
            # The RONL's version is the manifest's too: a made-up expected_version is refused the same way.
            for key in ("executable", "id", "component", "manifest_hash", "network", "expected_version"):
                body.pop(key, None)
        elif _valid_path(body.get("executable")):
            body["executable"] = EXECUTABLE
        binds = body.get("binds")
        if isinstance(binds, list):
            for bind in binds:
                if isinstance(bind, dict) and _valid_path(bind.get("source")):
                    bind["source"] = BIND_SOURCE
    return body


@schemathesis.hook
def map_query(ctx, query):
    if _is(ctx, "GET", "/v1/events"):
        query = dict(query or {})
        follow = query.get("follow")
        if follow is None or follow is True or follow is False or follow in ("true", "false", "True", "False"):
            query["follow"] = "false"
        if os.environ.get("CONTRACT_DEBUG"):
            print("map_query events", follow, "->", query, flush=True)
    return query
