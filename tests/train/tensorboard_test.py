#!/usr/bin/env python3
"""align sft with output.report_to ["jsonl", "tensorboard"], read back with the tensorboard package
(PyPI): every scalar of every logged metrics.jsonl line is in the event file, at its step, under
TRL's tag names (eval_* under eval/), to float32 precision.

  tensorboard_test.py ALIGN_BINARY SOURCE_DIR
"""
import json
import pathlib
import subprocess
import sys
import tempfile

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    align, source = sys.argv[1], pathlib.Path(sys.argv[2])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        model = tmp / "model"
        subprocess.run([align, "init", "--preset", "tiny", "--tokenizer",
                        str(source / "tests/golden/tokenizer/main"), "--out", str(model),
                        "--seed", "1", "--dtype", "fp32"], check=True, capture_output=True)
        config = {
            "model": {"path": str(model), "dtype": "fp32", "device": "cpu"},
            "data": {"train": str(source / "examples/sft/train.jsonl"),
                     "eval": str(source / "examples/sft/eval.jsonl"), "max_seq_len": 64},
            "schedule": {"max_steps": 4},
            "training": {"eval_every": 2},
            "output": {"dir": str(tmp / "run"), "report_to": ["jsonl", "tensorboard"]},
        }
        (tmp / "c.json").write_text(json.dumps(config))
        subprocess.run([align, "sft", "--config", str(tmp / "c.json")], check=True,
                       capture_output=True)
        records = [json.loads(line) for line in (tmp / "run/metrics.jsonl").read_text().splitlines()]
        events = list((tmp / "run/runs").glob("events.out.tfevents.*"))
        assert len(events) == 1, events
        acc = EventAccumulator(str(events[0]))
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        checked = 0
        for record in records:
            for key, value in record.items():
                if key == "step" or not isinstance(value, (int, float)):
                    continue
                tag = "eval/" + key[5:] if key.startswith("eval_") else key
                assert tag in tags, (tag, sorted(tags))
                at_step = {e.step: e.value for e in acc.Scalars(tag)}
                got = at_step[record["step"]]
                assert abs(got - value) <= 1e-6 * max(1.0, abs(value)), (tag, got, value)
                checked += 1
        for tag in ("loss", "learning_rate", "grad_norm", "num_tokens", "mean_token_accuracy",
                    "entropy", "eval/loss", "eval/mean_token_accuracy"):
            assert tag in tags, (tag, sorted(tags))
        print(f"tensorboard: {checked} scalars of {len(records)} records match metrics.jsonl")


if __name__ == "__main__":
    main()
