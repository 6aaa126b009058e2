#!/usr/bin/env python3
"""Writes tests/golden/datasets/ (dev-only; tests never run Python): small Hugging Face datasets
saved by the `datasets` package as Parquet in the layout push_to_hub gives a repo
(data/{split}-NNNNN-of-NNNNN.parquet, several row groups per file), and each split as `datasets`
itself reads it back, exported to JSON Lines. The C++ tests put the Parquet files into a hub cache
they write (datasets--align-test--NAME/snapshots/<commit>/data/...) and check that align reads
the same records, and the same tokenized examples, from both (tests/data/dataset_records_test.cc,
tests/eval/query_parquet_test.cc).

  NAME/data/SPLIT-0000I-of-0000N.parquet   the dataset's shards (Dataset.shard + to_parquet, as
                                           push_to_hub writes them; row groups of 8 rows)
  NAME.SPLIT.jsonl                         load_dataset("tests/golden/datasets/NAME", split=SPLIT)
                                           .to_json(): what datasets makes of the folder
  bad/messages_int64.parquet               a "messages" column of int64
  bad/null_content.parquet                 24 conversations in 3 row groups; row 17's second
                                           message has a null content

Usage: ~/.cache/align/venv/bin/python tools/golden_datasets.py
"""
import os
import pathlib
import shutil
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/golden/datasets"
ROW_GROUP = 8  # rows per Parquet row group (to_parquet's batch_size)


def turn(role, content):
    return {"role": role, "content": content}


WORDS = ["alpha", "beta", "carry the one", "naïve café", "日本語", "emoji 🙂", "tab\there",
         "line\nbreak", "<|im_end|> as text", "  spaces  ", "x" * 40]


def word(i):
    return WORDS[i % len(WORDS)]


def sft_messages(n):
    rows = []
    for i in range(n):
        messages = []
        if i % 3 == 0:
            messages.append(turn("system", f"You are assistant {i}."))
        for t in range(1 + i % 3):
            messages.append(turn("user", f"Question {i}.{t}: {word(i + t)}?"))
            messages.append(turn("assistant", f"Answer {i}.{t}: {word(i * 7 + t)}."))
        rows.append({"messages": messages})
    return rows


def sft_prompt_completion(n):
    return [{"prompt": [turn("user", f"What is {i} + {i}? {word(i)}")],
             "completion": [turn("assistant", f"{2 * i}, {word(i + 3)}")]} for i in range(n)]


def sft_text(n):
    return [{"text": f"Document {i}: {word(i)} {word(i + 1)}" + ("\n" if i % 5 == 0 else "")}
            for i in range(n)]


def dpo_conversational(n):
    return [{"prompt": [turn("user", f"Add {i} and {i + 9}. {word(i)}")],
             "chosen": [turn("assistant", f"{2 * i + 9}")],
             "rejected": [turn("assistant", f"{2 * i + 8}, {word(i + 2)}")]} for i in range(n)]


def dpo_implicit(n):
    return [{"chosen": f"Q{i}: name a colour. A: blue {word(i)}",
             "rejected": f"Q{i}: name a colour. A: seven {word(i + 1)}"} for i in range(n)]


def queries(n):
    return [{"id": 1000 + i, "prompt": f"What is {i} + {i + 1}? {word(i)}",
             "answer": str(2 * i + 1), "difficulty": i / 4, "tags": [word(i), "sum"]}
            for i in range(n)]


def queries_messages(n):
    return [{"messages": [turn("system", "Answer with a number."),
                          turn("user", f"What is {i} * 3? {word(i)}")],
             "answer": str(3 * i)} for i in range(n)]


# name -> {split: (rows, shards)}
DATASETS = {
    "sft-messages": {"train": (sft_messages(37), 2), "test": (sft_messages(9), 1)},
    "sft-prompt-completion": {"train": (sft_prompt_completion(20), 2)},
    "sft-text": {"train": (sft_text(20), 1)},
    "dpo-conversational": {"train": (dpo_conversational(26), 2), "test": (dpo_conversational(5), 1)},
    "dpo-implicit": {"train": (dpo_implicit(17), 1)},
    "queries": {"train": (queries(21), 2), "test": (queries(6), 1)},
    "queries-messages": {"train": (queries_messages(12), 1)},
}


def main():
    os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp()  # load_dataset's Arrow cache, thrown away
    from datasets import Dataset, load_dataset  # after the cache folder is chosen

    shutil.rmtree(OUT, ignore_errors=True)
    for name, splits in DATASETS.items():
        folder = OUT / name
        (folder / "data").mkdir(parents=True)
        for split, (rows, shards) in splits.items():
            ds = Dataset.from_list(rows)
            for i in range(shards):
                shard = ds.shard(num_shards=shards, index=i, contiguous=True)
                shard.to_parquet(str(folder / "data" / f"{split}-{i:05d}-of-{shards:05d}.parquet"),
                                 batch_size=ROW_GROUP)
        for split in splits:
            back = load_dataset(str(folder), split=split)
            back.to_json(str(OUT / f"{name}.{split}.jsonl"), lines=True, force_ascii=False)
    (OUT / "bad").mkdir()
    Dataset.from_list([{"messages": 5 + i} for i in range(3)]).to_parquet(
        str(OUT / "bad/messages_int64.parquet"))
    rows = sft_messages(24)
    rows[17]["messages"][1]["content"] = None
    Dataset.from_list(rows).to_parquet(str(OUT / "bad/null_content.parquet"), batch_size=ROW_GROUP)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
