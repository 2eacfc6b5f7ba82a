"""Build a tiny random-weight open-clip model in a folder and print its ``media.encoder`` spec.

    .venv/bin/python scripts/make_tiny_clip.py out/tiny-clip
"""

from __future__ import annotations

import argparse

from covr_datagen.pipeline.devtools.tiny_clip import build_tiny_open_clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="where to write <name>.json and <name>.pt")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build_tiny_open_clip(args.folder, args.seed))


if __name__ == "__main__":
    main()
