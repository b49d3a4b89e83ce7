"""Reads the iris CSV it is given, shows its first rows and keeps a copy in ./outputs."""

import argparse
import os

import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("--iris-csv", type=str)
args = parser.parse_args()

df = pd.read_csv(args.iris_csv)
print(df.head())
print(f"rows: {len(df)}")
os.makedirs("outputs", exist_ok=True)
df.to_csv("outputs/iris.csv", index=False)
