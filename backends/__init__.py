"""The pluggable backend seam: one ``connect()`` and an ``MLClient``-shaped object back.

>>> from backends import connect
>>> ml_client = connect()            # local emulator; AMLEMU_BACKEND=azure -> real MLClient
"""

from backends.registry import connect, known_backends

__all__ = ["connect", "known_backends"]
