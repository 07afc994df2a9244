"""python -m synth --out DIR [--scale 1] [--seed 7] [--s3-lines-per-object 50]: write synthetic raw logs + manifest."""

from __future__ import annotations

import argparse
import json
import logging

from synth import SOURCES, generate
from synth.s3_access import MEAN_LINES_PER_OBJECT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth", description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument(
        "--s3-lines-per-object",
        type=int,
        default=MEAN_LINES_PER_OBJECT,
        help="mean lines in an S3 access-log object (the same lines in fewer, larger objects)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    manifest = generate(
        args.out,
        scale=args.scale,
        seed=args.seed,
        sources=tuple(args.sources.split(",")),
        s3_lines_per_object=args.s3_lines_per_object,
    )
    for name, section in manifest["sources"].items():
        print(name, json.dumps(section["expected"]), f"{section['bytes'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
