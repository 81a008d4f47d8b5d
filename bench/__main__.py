"""``python -m bench [NAME ...]``: run benchmarks (all by default)."""

from __future__ import annotations

import argparse
import importlib

from bench.common import use_bench_database

BENCHMARKS = [
    "tenancy",
    "synthetic",
    "linkage",
    "guidance",
    "forms",
    "identity",
    "audit",
    "observability",
    "reports",
    "counter",
    "webhooks",
    "export",
]


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"one of {', '.join(BENCHMARKS)} (default: all)"
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for trying the harness")
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    use_bench_database()
    for name in args.names or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        print(f"== bench {name}")
        module.run(quick=args.quick)


if __name__ == "__main__":
    main()
