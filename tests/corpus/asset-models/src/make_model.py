"""Writes the model file the example folder ships (any pickled estimator will do for registration)."""

import pickle

with open("mlflow-model/model.pkl", "wb") as f:
    pickle.dump({"estimator": "LogisticRegression", "classes": ["setosa", "versicolor", "virginica"]}, f)
