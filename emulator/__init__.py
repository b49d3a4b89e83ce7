"""amlemu's local engine: the Azure ML concepts, emulated on one machine.

Layers, top to bottom (README "How the code is laid out"; import-linter keeps them): the front
doors (``cli``, ``demo``, ``testing``), the job kinds (``kinds`` and ``sweeps``, ``pipelines``,
``automl``), the concepts (``endpoints``, ``models``, ``jobs``, ``compute``, ``environments``),
then ``runtime``, ``store``, ``tracking`` and ``serving``, then ``arm``, ``config``, ``naming``
and ``errors``. Below the front doors nothing imports azure-ai-ml: the SDK-facing backend
(``backends.local``) builds the SDK's entities from the concepts' views; only ``demo``, a user of
that backend, writes azure-ai-ml code.
"""

__version__ = "0.1.0"
