"""Step 2: splits the prepped rows, fits a regression and writes the model and the held-out rows."""

import argparse
import os

import joblib
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split

parser = argparse.ArgumentParser()
parser.add_argument("--training_data")
parser.add_argument("--test_data")
parser.add_argument("--model_output")
args = parser.parse_args()

df = pd.read_csv(os.path.join(args.training_data, "prepped.csv"))
train, test = train_test_split(df, test_size=0.25, random_state=0)
model = LinearRegression().fit(train.drop(columns=["target"]), train["target"])
joblib.dump(model, os.path.join(args.model_output, "model.pkl"))
test.to_csv(os.path.join(args.test_data, "test.csv"), index=False)
print(f"trained on {len(train)} rows, kept {len(test)} for testing")
