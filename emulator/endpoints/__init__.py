"""Online endpoints: records and rules (``records``), the host process with its gateway and
replica sets (``host``, ``gateway``, ``replicas``, ``launch``), and the calls the front doors
make (``service``)."""
