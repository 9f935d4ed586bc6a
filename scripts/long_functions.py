#!/usr/bin/env python3
"""List functions longer than a limit (default 60 lines, decorators and docstring included).

    python3 scripts/long_functions.py [--max-lines 60] [PATH ...]   # default PATH: dnafm_lib

Prints ``lines  path:line  name`` longest first; exits 1 when any is found (usable in CI).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def long_functions(paths: list[Path], max_lines: int) -> list[tuple[int, str, int, str]]:
    found = []
    for path in sorted(p for root in paths for p in ([root] if root.is_file() else root.rglob("*.py"))):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = node.end_lineno - first + 1
                if length > max_lines:
                    found.append((length, str(path), node.lineno, node.name))
    return sorted(found, reverse=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("dnafm_lib")])
    parser.add_argument("--max-lines", type=int, default=60)
    args = parser.parse_args(argv)
    found = long_functions(args.paths, args.max_lines)
    for length, path, line, name in found:
        print(f"{length:4d}  {path}:{line}  {name}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
