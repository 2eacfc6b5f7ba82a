"""``covr-datagen config``: print the effective configuration as YAML (defaults, or a file
merged over them) — a starting point for ``--config``."""

from __future__ import annotations

import argparse
import sys

import yaml


def register(sub) -> None:
    parser = sub.add_parser("config", help="print the default (or merged) configuration as YAML")
    parser.add_argument("--config", help="config file to merge over the defaults and validate")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from covr_datagen.pipeline.config import load_config

    cfg = load_config(args.config)
    yaml.safe_dump(cfg.to_dict(), sys.stdout, sort_keys=False, default_flow_style=False)
    return 0
