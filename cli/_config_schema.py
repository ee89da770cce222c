from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config-schema", help="print the training config's JSON Schema (for editors)",
                       epilog="example: skedge config-schema > skedge-config.schema.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from skedge.trainer import config_json_schema

    print(json.dumps(config_json_schema(), indent=2, sort_keys=True))
    return 0
