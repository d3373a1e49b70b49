"""pysteps schema: print the JSON Schema of deploy.yaml (also shipped in resources/)."""

from __future__ import annotations

import json


def run(argv: list[str], verbose: bool = False) -> int:
    from pysteps.spec import json_schema

    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return 0
