"""``amlemu studio``: the workspace in a browser, as Azure ML studio shows it.

A front door beside :mod:`emulator.frontdoor`: server-rendered pages (Flask, Jinja templates, a little
vanilla JavaScript and the vendored uPlot for charts) over the same engine functions and views the
``amlemu`` CLI prints. It keeps no state of its own; its few writes (a compute instance's start, stop and
restart, an endpoint's test request, a job's cancel) go through the engine with the engine's validation.

- :mod:`.app` builds the Flask app: blueprints, the CSRF and Host checks, errors as pages.
- :mod:`.reads` holds the reads the pages need beyond the views: a page of jobs, metric series
  downsampled for a chart, files, a log tail.
- :mod:`.jobs`, :mod:`.assets`, :mod:`.endpoints`, :mod:`.compute`: one blueprint per studio area.
- :mod:`.server` serves the app on 127.0.0.1 (``amlemu studio``, the tests and the benchmark).
"""
