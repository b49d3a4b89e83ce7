"""Prints the interpreter's and the pinned packages' versions, and uses them once."""

import platform

import joblib
import numpy
import pandas
import scipy
import sklearn
import tqdm
from sklearn.linear_model import LinearRegression

print(f"python {platform.python_version()}")
for name, module in [
    ("numpy", numpy),
    ("scipy", scipy),
    ("pandas", pandas),
    ("scikit-learn", sklearn),
    ("joblib", joblib),
    ("tqdm", tqdm),
]:
    print(f"{name} {module.__version__}")
frame = pandas.DataFrame({"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]})
slope = LinearRegression().fit(frame[["x"]], frame["y"]).coef_[0]
print(f"slope {slope:.1f}")
