#!/usr/bin/env python3
"""Checks that every #include in the project follows layers.txt, and draws the layer diagram.

  scripts/check_layers.py [--root DIR]            check; prints each violation, exits 1 on any
  scripts/check_layers.py [--root DIR] --diagram  print the diagram the README carries
  scripts/check_layers.py [--root DIR] --update-readme   redraw the README's diagram in place

A file in folder F (its first path component) may include "G/..." when G is F or is reachable
from F through layers.txt. Checked too: every top-level folder holding C++ or CUDA sources is in
layers.txt, layers.txt has no cycle, CUDA files (*.cu, *.cuh) and the headers they include never
reach a Torch header (torch/, ATen/, c10/), and the README's diagram block is the one drawn here.
Python standard library only.
"""
import argparse
import pathlib
import re
import sys

SOURCE_SUFFIXES = {".h", ".cc", ".cu", ".cuh"}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')
TORCH_PREFIXES = ("torch/", "ATen/", "c10/")
BEGIN = "<!-- layers: drawn from layers.txt by scripts/check_layers.py --diagram -->"
END = "<!-- /layers -->"


def read_layers(path):
    """{folder: [listed folders]} in file order; raises ValueError naming the line."""
    layers = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if ":" not in line:
            raise ValueError(f"{path}:{number}: expected 'folder: lower folders...', found {raw!r}")
        name, _, rest = line.partition(":")
        name = name.strip()
        if name in layers:
            raise ValueError(f"{path}:{number}: {name} is listed twice")
        layers[name] = rest.split()
    for name, below in layers.items():
        for b in below:
            if b not in layers:
                raise ValueError(f"{path}: {name} lists {b}, which has no line of its own")
    return layers


def reachable(layers):
    """{folder: set of folders it may include (itself included)}; raises ValueError on a cycle."""
    out, visiting = {}, set()

    def visit(name, chain):
        if name in out:
            return out[name]
        if name in visiting:
            raise ValueError("layers.txt has a cycle: " + " -> ".join(chain + [name]))
        visiting.add(name)
        seen = {name}
        for b in layers[name]:
            seen |= visit(b, chain + [name])
        visiting.discard(name)
        out[name] = seen
        return seen

    for name in layers:
        visit(name, [])
    return out


def floors(layers):
    """Floor of each folder: 1 + the highest floor it lists (1 for none)."""
    memo = {}

    def floor(name):
        if name not in memo:
            memo[name] = 1 + max((floor(b) for b in layers[name]), default=0)
        return memo[name]

    return {name: floor(name) for name in layers}


def diagram(layers):
    """The layers as text, top floor first: each folder with the folders it lists."""
    fl = floors(layers)
    width = max(len(n) for n in layers)
    lines = []
    for f in range(max(fl.values()), 0, -1):
        for name in [n for n in layers if fl[n] == f]:
            below = ", ".join(layers[name])
            arrow = f"  ──> {below}" if below else ""
            lines.append(f"{f:<3} {name:<{width}}{arrow}".rstrip())
    return "\n".join(lines)


def source_files(root):
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.suffix in SOURCE_SUFFIXES and path.is_file() and rel.parts[0] not in (
                "build", ".git", ".device") and not rel.parts[0].startswith("build"):
            yield rel


def includes(root, rel):
    for number, line in enumerate((root / rel).read_text(errors="replace").splitlines(), 1):
        m = INCLUDE.match(line)
        if m:
            yield number, m.group(1), m.group(2)


def check(root):
    layers = read_layers(root / "layers.txt")
    allowed = reachable(layers)
    problems = []
    files = list(source_files(root))
    folders = {rel.parts[0] for rel in files if len(rel.parts) > 1}
    for folder in sorted(folders - set(layers)):
        problems.append(f"{folder}/: holds sources but has no line in layers.txt")
    for rel in files:
        if len(rel.parts) < 2 or rel.parts[0] not in layers:
            continue
        mine = rel.parts[0]
        for number, kind, target in includes(root, rel):
            if kind != '"':
                continue
            other = target.split("/", 1)[0]
            if "/" not in target or other not in layers:
                continue
            if other not in allowed[mine]:
                problems.append(f"{rel}:{number}: #include \"{target}\": {mine}/ may not include "
                                f"{other}/ ({mine} reaches {', '.join(sorted(allowed[mine]))}; "
                                "see layers.txt)")
    # CUDA sources and everything they include from the project stay Torch-free.
    for rel in files:
        if rel.suffix not in (".cu", ".cuh"):
            continue
        stack, seen = [(rel, [])], set()
        while stack:
            f, chain = stack.pop()
            if f in seen or not (root / f).is_file():
                continue
            seen.add(f)
            for number, kind, target in includes(root, f):
                if target.startswith(TORCH_PREFIXES):
                    via = " via " + " -> ".join(str(c) for c in chain + [f]) if chain else ""
                    problems.append(f"{f}:{number}: #include {target}: CUDA kernels stay "
                                    f"Torch-free{via}")
                elif kind == '"':
                    stack.append((pathlib.Path(target), chain + [f]))
    readme = root / "README.md"
    if readme.is_file():
        text = readme.read_text()
        if BEGIN not in text or END not in text:
            problems.append(f"README.md: no layer diagram between '{BEGIN}' and '{END}'")
        else:
            block = text.split(BEGIN, 1)[1].split(END, 1)[0]
            lines = [l for l in block.strip("\n").splitlines() if not l.startswith("```")]
            if "\n".join(lines) != diagram(layers):
                problems.append("README.md: the layer diagram differs from layers.txt; replace it "
                                "with the output of scripts/check_layers.py --diagram")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=pathlib.Path(__file__).resolve().parent.parent,
                        type=pathlib.Path)
    parser.add_argument("--diagram", action="store_true")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    try:
        if args.diagram:
            print(diagram(read_layers(args.root / "layers.txt")))
            return 0
        if args.update_readme:
            readme = args.root / "README.md"
            text = readme.read_text()
            head, rest = text.split(BEGIN, 1)
            tail = rest.split(END, 1)[1]
            block = "\n```\n" + diagram(read_layers(args.root / "layers.txt")) + "\n```\n"
            readme.write_text(head + BEGIN + block + END + tail)
            return 0
        problems = check(args.root)
    except (OSError, ValueError) as e:
        print(f"check_layers: {e}", file=sys.stderr)
        return 1
    for p in problems:
        print(f"check_layers: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
