"""Trains the iris classifier, logs its accuracy with MLflow and writes the model to ./outputs/model."""

import argparse
import os

import joblib
import mlflow
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

parser = argparse.ArgumentParser()
parser.add_argument("--data")
parser.add_argument("--C", type=float, default=1.0)
args = parser.parse_args()

print(f"scikit-learn {sklearn.__version__}, pandas {pd.__version__}")
df = pd.read_csv(args.data)
X, y = df.drop(columns=["species"]), df["species"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
model = LogisticRegression(C=args.C, max_iter=1000).fit(X_train.to_numpy(), y_train)

mlflow.log_param("C", args.C)
mlflow.log_metric("accuracy", model.score(X_test.to_numpy(), y_test))
os.makedirs("outputs/model", exist_ok=True)
joblib.dump(model, "outputs/model/iris_model.pkl")
