"""Step 3: predicts the held-out rows with the trained model."""

import argparse
import os

import joblib
import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("--model_input")
parser.add_argument("--test_data")
parser.add_argument("--predictions")
args = parser.parse_args()

model = joblib.load(os.path.join(args.model_input, "model.pkl"))
test = pd.read_csv(os.path.join(args.test_data, "test.csv"))
out = pd.DataFrame({"actual": test["target"], "predicted": model.predict(test.drop(columns=["target"]))})
out.to_csv(os.path.join(args.predictions, "predictions.csv"), index=False)
print(f"predicted {len(out)} rows")
