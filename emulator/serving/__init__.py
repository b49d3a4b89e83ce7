"""The scoring server: the process inside one replica of an online deployment.

It honours the ``azureml-inference-server-http`` contract, so a scoring script
that works on Azure ML works here unchanged:

* the script's ``init()`` runs once before the port opens, ``run(raw_data)``
  once per request (``@input_schema``, ``@rawhttp`` and ``request_headers``
  are honoured the way the real server honours them);
* ``GET /`` answers ``Healthy``; ``GET|POST /score`` scores; ``GET /swagger.json``
  describes the service; a failing ``run()`` answers 500 with
  ``x-ms-run-function-failed: True``.

With no scoring script, a built-in scorer serves the single ONNX model under
``AZUREML_MODEL_DIR`` with ONNX Runtime and checks every request against the
model's input signature before running it.

The package runs in minimal environments (a user's virtualenv or a container
holding only flask, waitress, numpy and onnxruntime), so it imports nothing
else from ``emulator`` and nothing heavier than those packages. A scoring script
is served with granian when that is installed (about twice waitress's
throughput), else with waitress; inference-schema is used when a scoring script
uses it. The built-in ONNX scorer is served by the direct server
(``direct_server``: asyncio and llhttp, no WSGI on ``POST /score``) where the
interpreter has Python 3.11+ and httptools, as amlemu's own has; it also offers
its gateway a Unix socket, cheaper than TCP.

Run it as ``python -m emulator.serving --host 127.0.0.1 --port 5001``.
"""
