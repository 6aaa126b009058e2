#!/usr/bin/env python3
"""Checks run_readme_commands.py on READMEs this test writes: commands run in order from a scratch
folder, continuation lines and indented blocks are read, placeholders and the commands that read
a skipped command's run folder are skipped, and a paste-unsafe line (`[--dtype fp32|bf16]`) fails
the run, naming the file and the command."""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
RUNNER = os.path.join(HERE, "run_readme_commands.py")


def run(readme_text, build):
    with tempfile.TemporaryDirectory() as d:
        readme = os.path.join(d, "README.md")
        with open(readme, "w") as f:
            f.write(readme_text)
        r = subprocess.run([sys.executable, RUNNER, "--build", build, "--source", SOURCE, readme],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return r.returncode, r.stdout


def check(condition, message, output):
    if not condition:
        print(f"FAILED: {message}\n--- runner output ---\n{output}")
        sys.exit(1)


def main():
    with tempfile.TemporaryDirectory() as build:
        good = """Intro.

```sh
# a comment line
mkdir -p runs/a && echo one > runs/a/x   # trailing comment
cat runs/a/x \\
  examples/arith/model_config.json > runs/b
build/bin/align init --preset phi-4 --tokenizer PHI4_SNAPSHOT --out runs/phi4   # 29 GB
build/bin/align pipeline --config examples/pipeline/phi4_math.json
ls runs/phi4-math
OMP_NUM_THREADS=1 test -s runs/b
```

- an item with an indented block:

  ```sh
  test -L build && test -f examples/arith/pipeline.json
  ```
"""
        code, out = run(good, build)
        check(code == 0, "a README of working commands passes", out)
        check("4 commands ran, 3 skipped" in out, "counts", out)
        check("skip (placeholder PHI4_SNAPSHOT)" in out, "placeholder in the command", out)
        check("skip (its config's placeholder" in out, "placeholder in the --config file", out)
        check("skip (reads runs/phi4-math, written by a skipped command)" in out,
              "a command reading a skipped run's folder", out)

        bad = """```sh
echo first
build/bin/align logprobs --output x.jsonl [--dtype fp32|bf16]
echo never
```
"""
        code, out = run(bad, build)
        check(code != 0, "a paste-unsafe line fails", out)
        check("command 2 failed" in out and "[--dtype fp32|bf16]" in out,
              "the failure names the command", out)
        check("[3/3]" not in out, "stops at the failure", out)
    print("ok")


if __name__ == "__main__":
    main()
