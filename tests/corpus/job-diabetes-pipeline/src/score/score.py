"""Step 4: scores the predictions and writes a short report."""

import argparse
import os

import pandas as pd
from sklearn.metrics import mean_absolute_error, r2_score

parser = argparse.ArgumentParser()
parser.add_argument("--predictions")
parser.add_argument("--model")
parser.add_argument("--score_report")
args = parser.parse_args()

df = pd.read_csv(os.path.join(args.predictions, "predictions.csv"))
r2 = r2_score(df["actual"], df["predicted"])
mae = mean_absolute_error(df["actual"], df["predicted"])
model_files = sorted(os.listdir(args.model))
with open(os.path.join(args.score_report, "score.txt"), "w") as f:
    f.write(f"Model: {model_files}\nR2: {r2:.4f}\nMAE: {mae:.4f}\n")
print(f"R2 {r2:.4f} MAE {mae:.4f}")
