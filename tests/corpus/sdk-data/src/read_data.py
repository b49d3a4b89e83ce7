"""Reads the CSV it is given and shows its first rows."""

import argparse

import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("--input_data", type=str)
args = parser.parse_args()

df = pd.read_csv(args.input_data)
print(df.head(10))
print(f"rows read: {len(df)}")
