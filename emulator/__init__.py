"""amlemu's local engine: the Azure ML concepts, emulated on one machine.

Each concept lives in its own package (``jobs``, ``models``, ``environments``,
``store``, ``tracking``, ``runtime``); ``cli`` is the ``az ml``-shaped front door.
Nothing here imports azure-ai-ml: the Python front door (``backends.local``)
translates the SDK's entities to the plain records the engine keeps.
"""

__version__ = "0.1.0"
