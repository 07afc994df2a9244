"""python -m synth --out DIR [--scale 1] [--seed 7]: write synthetic raw logs + manifest."""

from __future__ import annotations

import argparse
import json
import logging

from synth import SOURCES, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth", description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sources", default=",".join(SOURCES))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    manifest = generate(args.out, scale=args.scale, seed=args.seed, sources=tuple(args.sources.split(",")))
    for name, section in manifest["sources"].items():
        print(name, json.dumps(section["expected"]), f"{section['bytes'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
