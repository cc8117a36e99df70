"""Optional integrations. Each module needs its extra installed:

* :mod:`streamspec.contrib.locust` (``pip install 'streamspec[locust]'``): a Locust
  user that load-tests an OpenAI-compatible server and reports time to first
  token, inter-token latency and tokens per second.
"""
