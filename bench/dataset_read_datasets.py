#!/usr/bin/env python3
"""The `datasets` side of bench/dataset_read_compare.sh, and the data it reads.

  write --dir DIR --mb N   N MB of text (English-like words, documents of 0.2-4 KB) as a dataset
                           with one "text" column, saved by datasets in push_to_hub's layout:
                           DIR/data/train-0000I-of-0000K.parquet (to_parquet's defaults: snappy,
                           row groups of 1,000 rows), about 128 MB of text per shard.
  read --dir DIR           prints one table row per way datasets reads the shards:
                             load_dataset   load_dataset("parquet", data_files=...) with an empty
                                            cache: Parquet -> its Arrow cache file, memory-mapped
                             + rows         every row of the loaded dataset as a Python dict
                             streaming      load_dataset(..., streaming=True): rows straight from
                                            the Parquet files
                           "+ rows" and "streaming" end where align's reader ends: every record in
                           hand; load_dataset alone stops before any row is read.
"""
import argparse
import glob
import os
import resource
import shutil
import tempfile
import time

import numpy as np


def words(rng, n):
    syllables = ["ka", "ri", "mon", "tel", "ash", "or", "ven", "qu", "ist", "pra", "lo", "ne",
                 "sub", "dra", "ex", "il", "ung", "zo", "th", "ble", "the", "of", "and", "to"]
    vocab = ["".join(rng.choice(syllables, size=rng.integers(1, 4))) for _ in range(n)]
    weights = 1.0 / np.arange(1, n + 1)  # Zipf-like frequencies, as in natural text
    return np.array(vocab), weights / weights.sum()


def write(folder, mb):
    from datasets import Dataset

    rng = np.random.default_rng(0)
    vocab, p = words(rng, 50_000)
    shard_mb = 128
    shards = max(1, (mb + shard_mb - 1) // shard_mb)
    data = os.path.join(folder, "data")
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    cdf = np.cumsum(p)
    for s in range(shards):
        texts, size = [], 0
        target = min(shard_mb, mb - s * shard_mb) * 1_000_000
        while size < target:
            lengths = rng.integers(30, 600, size=4096)  # words per document
            picks = vocab[np.minimum(np.searchsorted(cdf, rng.random(lengths.sum())), len(vocab) - 1)]
            for doc in np.split(picks, np.cumsum(lengths)[:-1]):
                text = " ".join(doc.tolist())
                texts.append(text)
                size += len(text)
                if size >= target:
                    break
        Dataset.from_dict({"text": texts}).to_parquet(
            os.path.join(data, f"train-{s:05d}-of-{shards:05d}.parquet"))
        print(f"wrote shard {s + 1}/{shards}", flush=True)


def row(side, records, text_bytes, file_bytes, seconds):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| {side} | 1 | {records} | {text_bytes / 1e6:.1f} | {file_bytes / 1e6:.1f} | "
          f"{seconds:.2f} | {text_bytes / 1e6 / seconds:.1f} | {rss:.0f} |", flush=True)


def read(folder):
    from datasets import load_dataset
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    files = sorted(glob.glob(os.path.join(folder, "data", "*.parquet")))
    file_bytes = sum(os.path.getsize(f) for f in files)
    cache = tempfile.mkdtemp(prefix="datasets-bench-")
    try:
        start = time.perf_counter()
        ds = load_dataset("parquet", data_files={"train": files}, split="train", cache_dir=cache)
        loaded = time.perf_counter() - start
        row("datasets load_dataset", len(ds), 0, file_bytes, loaded)
        start = time.perf_counter()
        n = text = 0
        for r in ds:
            n += 1
            text += len(r["text"].encode())
        row("datasets load_dataset + rows", n, text, file_bytes,
            loaded + time.perf_counter() - start)
        del ds
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    n = text = 0
    for r in load_dataset("parquet", data_files={"train": files}, split="train", streaming=True):
        n += 1
        text += len(r["text"].encode())
    row("datasets streaming", n, text, file_bytes, time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["write", "read"])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--mb", type=int, default=1000)
    args = parser.parse_args()
    if args.what == "write":
        write(args.dir, args.mb)
    else:
        read(args.dir)


if __name__ == "__main__":
    main()
