"""Keeps the example app's frame fresh: every --every seconds it loads the
next data set from Parquet and puts it under one name, replacing the old
one atomically (readers see the old or the new frame, never none).

    python loader.py --rows 10000000 --every 30         # runs until stopped
    python loader.py --rows 20000 --once --generation 1 # one refresh

The data sets are Parquet files in --data-dir (made on first use with
data.make_frame: --datasets of them, cycled through). The backend is
$DASH_APP_BACKEND, as for the app.
"""

import argparse
import os
import sys
import time

import pandas as pd

import data


def parquet_path(data_dir, rows, generation):
    return os.path.join(data_dir, f"sales-{rows}-{generation}.parquet")


def load(frames, data_dir, rows, generation):
    path = parquet_path(data_dir, rows, generation)
    if not os.path.exists(path):
        os.makedirs(data_dir, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        data.make_frame(rows, generation).to_parquet(tmp)
        os.replace(tmp, path)
    t0 = time.perf_counter()
    df = pd.read_parquet(path)
    t1 = time.perf_counter()
    frames.put(df)
    t2 = time.perf_counter()
    print(
        f"loader: generation {generation} ({rows:,} rows): read {t1 - t0:.2f} s, "
        f"put {t2 - t1:.2f} s, data version {frames.version()}",
        flush=True,
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--every", type=float, default=30.0, help="seconds between refreshes")
    ap.add_argument("--datasets", type=int, default=2, help="data sets to cycle through")
    ap.add_argument("--generation", type=int, default=0, help="the first data set")
    ap.add_argument("--data-dir", default=os.environ.get("DASH_APP_DATA", "/tmp/dash_app_data"))
    ap.add_argument("--once", action="store_true", help="load one data set and exit")
    args = ap.parse_args(argv)

    frames, _, _ = data.open_backend()
    generation = args.generation
    while True:
        load(frames, args.data_dir, args.rows, generation)
        if args.once:
            return 0
        generation = (generation + 1) % args.datasets
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
