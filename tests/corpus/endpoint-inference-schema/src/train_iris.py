"""Trains the iris classifier the inference-schema deployments load (classes in alphabetical order)."""

import argparse
import os

import joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression

parser = argparse.ArgumentParser()
parser.add_argument("--data")
args = parser.parse_args()

df = pd.read_csv(args.data)
features, species = df.drop(columns=["species"]).to_numpy(), df["species"]
model = LogisticRegression(max_iter=1000).fit(features, species)
print(f"classes {list(model.classes_)}, training accuracy {model.score(features, species):.3f}")
os.makedirs("outputs/models", exist_ok=True)
joblib.dump(model, "outputs/models/iris.pkl")
