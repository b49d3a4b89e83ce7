"""The scoring script Azure ML generates for an MLflow model deployed without code (see ``score``).

Its folder is the replica's ``AML_APP_ROOT``: it holds only ``score.py``, so that nothing else of the
server lands on the script's ``sys.path``.
"""
