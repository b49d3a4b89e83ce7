"""The ``amlemu`` command line, shaped like ``az ml``."""
