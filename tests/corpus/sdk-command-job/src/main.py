"""Trains a support vector classifier on iris with MLflow autologging (training_* metrics)."""

import argparse

import mlflow
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

parser = argparse.ArgumentParser()
parser.add_argument("--iris-csv", type=str)
parser.add_argument("--C", type=float, default=1.0)
parser.add_argument("--kernel", type=str, default="rbf")
parser.add_argument("--degree", type=int, default=3)
parser.add_argument("--gamma", type=str, default="scale")
parser.add_argument("--coef0", type=float, default=0)
parser.add_argument("--random_state", type=int, default=42)
args = parser.parse_args()

mlflow.autolog()

df = pd.read_csv(args.iris_csv)
X, y = df.drop(columns=["species"]), df["species"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=args.random_state)
model = SVC(
    C=args.C, kernel=args.kernel, degree=args.degree, gamma=args.gamma, coef0=args.coef0, random_state=args.random_state
).fit(X_train, y_train)
print(f"test accuracy: {model.score(X_test, y_test):.3f}")
