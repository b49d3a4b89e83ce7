"""Split the iris CSV into train.csv and test.csv in the output folder (every 5th row is test).

Usage: python prep.py --data iris.csv --out <folder>
"""

import argparse
import csv
import os


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the iris CSV (a uri_file input)")
    parser.add_argument("--out", required=True, help="the output folder (a uri_folder output)")
    args = parser.parse_args()
    with open(args.data, newline="") as f:
        reader = csv.reader(f)
        header, rows = next(reader), list(reader)
    splits = {"train.csv": [r for i, r in enumerate(rows) if i % 5], "test.csv": rows[::5]}
    os.makedirs(args.out, exist_ok=True)
    for name, part in splits.items():
        with open(os.path.join(args.out, name), "w", newline="") as f:
            csv.writer(f).writerows([header, *part])
    print(f"prep: {len(splits['train.csv'])} training rows, {len(splits['test.csv'])} test rows -> {args.out}")


if __name__ == "__main__":
    main()
