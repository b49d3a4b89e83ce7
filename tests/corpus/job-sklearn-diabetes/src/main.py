"""Fits a linear regression to the diabetes table with MLflow autologging on (metrics, params, model)."""

import argparse

import mlflow
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split


def str2bool(text):
    return str(text).lower() in ("1", "true", "yes")


parser = argparse.ArgumentParser()
parser.add_argument("--diabetes-csv", type=str)
parser.add_argument("--random_state", type=int, default=42)
parser.add_argument("--fit_intercept", type=str2bool, default=True)
parser.add_argument("--positive", type=str2bool, default=False)
args = parser.parse_args()

mlflow.autolog()

df = pd.read_csv(args.diabetes_csv)
X, y = df.drop(columns=["target"]), df["target"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=args.random_state)
model = LinearRegression(fit_intercept=args.fit_intercept, positive=args.positive).fit(X_train, y_train)
print(f"test R^2: {model.score(X_test, y_test):.3f}")
