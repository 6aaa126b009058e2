#!/usr/bin/env python3
"""Runs every shell command of a README's ```sh blocks, in order, as a reader would paste them.

    run_readme_commands.py --build BUILD_DIR --source SOURCE_DIR README.md

The commands run with bash from a scratch folder that holds copies of the bundled inputs
(examples/, scripts/, tests/golden/) and `build` linking to BUILD_DIR, so `build/bin/align` and
the scripts work as in a clone and the outputs (runs/) land in the scratch folder. Each README file
gets its own scratch folder. A command is skipped, with the reason printed, when:
  - it or the JSON config it passes with --config names a placeholder the reader must replace
    (an upper-case word such as PHI4_SNAPSHOT, CFG.json, RUN_DIR, PATH/TO/...; not VAR=value),
  - it names a run folder (runs/...) that a skipped command's config would have written,
  - it is the test command itself (scripts/test.sh runs this test).
Exits non-zero at the first command that fails, printing it and the end of its output.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

PLACEHOLDER = re.compile(r"(?<![\w$])[A-Z][A-Z0-9_]{2,}(?![\w=])")
SELF = {"scripts/test.sh"}
COPIED = ["examples", "scripts", "tests/golden"]


def sh_blocks(text):
    """The commands of every ```sh block: continuation lines joined, comment lines dropped."""
    commands = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^(\s*)```sh\s*$", lines[i])
        i += 1
        if not fence:
            continue
        indent = len(fence.group(1))
        pending = ""
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            line = lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i]
            i += 1
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            commands.append((pending + line).strip())
            pending = ""
        i += 1
    return commands


def config_of(command, root):
    """The JSON config a command passes with --config, parsed, or None."""
    match = re.search(r"--config\s+(\S+)", command)
    if not match:
        return None
    path = os.path.join(root, match.group(1))
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def strings_of(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings_of(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_of(v)


def run_folders(config):
    """The runs/... folders a config writes into (run_dir, output.dir)."""
    out = []
    if isinstance(config, dict):
        if isinstance(config.get("run_dir"), str):
            out.append(config["run_dir"])
        output = config.get("output")
        if isinstance(output, dict) and isinstance(output.get("dir"), str):
            out.append(output["dir"])
    return [f for f in out if f.startswith("runs/")]


def skip_reason(command, root, skipped_folders):
    without_comment = command.split(" #")[0]
    if without_comment.split()[0] in SELF:
        return "the test command runs this test"
    found = PLACEHOLDER.findall(without_comment)
    if found:
        return "placeholder " + found[0]
    config = config_of(without_comment, root)
    if config is not None:
        for s in strings_of(config):
            found = PLACEHOLDER.findall(s)
            if found:
                return "its config's placeholder " + found[0]
    for folder in skipped_folders:
        if re.search(re.escape(folder) + r"(/|\s|$)", without_comment):
            return "reads " + folder + ", written by a skipped command"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True, help="build folder (has bin/align)")
    parser.add_argument("--source", required=True, help="the clone the README belongs to")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per command")
    parser.add_argument("readme")
    args = parser.parse_args()
    with open(args.readme) as f:
        commands = sh_blocks(f.read())
    if not commands:
        print(f"{args.readme}: no ```sh block with a command", file=sys.stderr)
        return 1
    scratch = tempfile.mkdtemp(prefix="align-readme-")
    try:
        for part in COPIED:
            shutil.copytree(os.path.join(args.source, part), os.path.join(scratch, part),
                            symlinks=True)
        os.symlink(os.path.abspath(args.build), os.path.join(scratch, "build"))
        skipped_folders = []
        ran = 0
        for n, command in enumerate(commands, 1):
            reason = skip_reason(command, scratch, skipped_folders)
            if reason:
                print(f"[{n}/{len(commands)}] skip ({reason}): {command}", flush=True)
                skipped_folders += run_folders(config_of(command, scratch))
                continue
            print(f"[{n}/{len(commands)}] run: {command}", flush=True)
            start = time.monotonic()
            try:
                result = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=scratch,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, errors="replace", timeout=args.timeout)
                code, output = result.returncode, result.stdout
            except subprocess.TimeoutExpired as e:
                code = f"timeout after {args.timeout} s"
                output = e.stdout.decode(errors="replace") if e.stdout else ""
            if code != 0:
                print(f"{args.readme}: command {n} failed ({code}): {command}\n"
                      f"--- its output (end) ---\n{output[-6000:]}", file=sys.stderr)
                return 1
            ran += 1
            print(f"    ok in {time.monotonic() - start:.1f} s", flush=True)
        print(f"{args.readme}: {ran} commands ran, {len(commands) - ran} skipped")
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
