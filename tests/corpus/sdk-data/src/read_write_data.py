"""Reads the CSV it is given and writes it back, as CSV, to the output folder."""

import argparse
import os

import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("--input_data", type=str)
parser.add_argument("--output_folder", type=str)
args = parser.parse_args()

df = pd.read_csv(args.input_data)
output_path = os.path.join(args.output_folder, "my_output.csv")
df.to_csv(output_path, index=False)
print(f"wrote {len(df)} rows to {output_path}")
