"""Step 1: keeps the diabetes table's complete rows and writes them as the step's output."""

import argparse
import os

import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("--raw_data")
parser.add_argument("--prep_data")
args = parser.parse_args()

df = pd.read_csv(os.path.join(args.raw_data, "diabetes.csv")).dropna()
df.to_csv(os.path.join(args.prep_data, "prepped.csv"), index=False)
print(f"prepped {len(df)} rows")
