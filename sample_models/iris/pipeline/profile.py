"""Count the rows of each class in the prepared data and write profile.json (a parallel branch).

Usage: python profile.py --prepared <folder> --out <folder>
"""

import argparse
import collections
import csv
import json
import os


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", required=True, help="prep's output folder")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    profile = {}
    for name in ("train.csv", "test.csv"):
        with open(os.path.join(args.prepared, name), newline="") as f:
            profile[name] = dict(collections.Counter(row["species"] for row in csv.DictReader(f)))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "profile.json"), "w") as f:
        json.dump(profile, f, indent=2, sort_keys=True)
    print(f"profile: {profile}")


if __name__ == "__main__":
    main()
