#!/usr/bin/env python3
"""scripts/check_layers.py against small trees written here: a clean tree passes, and each kind of
violation (an upward include, a folder missing from layers.txt, a cycle, a CUDA file reaching a
Torch header, a README diagram that drifted) fails naming the place. Standard library only."""
import pathlib
import subprocess
import sys
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHECK = ROOT / "scripts" / "check_layers.py"

LAYERS = """# test tree
common:
model: common
app: model
"""


def run(root, *args):
    p = subprocess.run([sys.executable, str(CHECK), "--root", str(root), *args],
                       capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


class Tree:
    def __init__(self, layers=LAYERS):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = pathlib.Path(self.tmp.name)
        self.write("layers.txt", layers)
        self.write("common/io.h", "#pragma once\n#include <string>\n")
        self.write("model/net.h", '#pragma once\n#include "common/io.h"\n')
        self.write("model/net.cc", '#include "model/net.h"\n#include <torch/torch.h>\n')
        self.write("model/k.cu", '#include "model/k.h"\n')
        self.write("model/k.h", "#pragma once\n#include <cuda_runtime_api.h>\n")
        self.write("app/main.cc", '#include "model/net.h"\n#include "common/io.h"\n')
        self.write("README.md", "# t\n\n<!-- layers: drawn from layers.txt by "
                   "scripts/check_layers.py --diagram -->\n<!-- /layers -->\n")
        code, out = run(self.root, "--update-readme")
        assert code == 0, out

    def write(self, rel, text):
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


class CheckLayersTest(unittest.TestCase):
    def test_clean_tree_passes(self):
        t = Tree()
        self.assertEqual(run(t.root), (0, ""))

    def test_upward_include_fails_naming_file_and_line(self):
        t = Tree()
        t.write("model/net.cc", '#include "model/net.h"\n#include "app/main.h"\n')
        code, out = run(t.root)
        self.assertEqual(code, 1)
        self.assertIn('model/net.cc:2: #include "app/main.h": model/ may not include app/', out)

    def test_a_folder_without_a_layer_fails(self):
        t = Tree()
        t.write("extra/x.h", "#pragma once\n")
        code, out = run(t.root)
        self.assertEqual(code, 1)
        self.assertIn("extra/: holds sources but has no line in layers.txt", out)

    def test_a_cycle_fails(self):
        t = Tree()
        t.write("layers.txt", LAYERS + "common: app\n")
        code, out = run(t.root)
        self.assertEqual(code, 1)
        self.assertIn("listed twice", out)
        t.write("layers.txt", "common: app\nmodel: common\napp: model\n")
        code, out = run(t.root)
        self.assertEqual(code, 1)
        self.assertIn("cycle", out)

    def test_cuda_reaching_torch_fails(self):
        t = Tree()
        t.write("model/k.h", "#pragma once\n#include <ATen/ATen.h>\n")
        code, out = run(t.root)
        self.assertEqual(code, 1)
        self.assertIn("model/k.h:2: #include ATen/ATen.h: CUDA kernels stay Torch-free via "
                      "model/k.cu", out)

    def test_readme_diagram_drift_fails(self):
        t = Tree()
        t.write("layers.txt", LAYERS + "tool: common\n")
        code, out = run(t.root)
        self.assertEqual(code, 1)
        self.assertIn("README.md: the layer diagram differs from layers.txt", out)

    def test_diagram_lists_floors_top_first(self):
        t = Tree()
        code, out = run(t.root, "--diagram")
        self.assertEqual(code, 0)
        self.assertEqual(out.splitlines()[0].split(), ["3", "app", "──>", "model"])
        self.assertEqual(out.splitlines()[-1].split(), ["1", "common"])


if __name__ == "__main__":
    unittest.main()
