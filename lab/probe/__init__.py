"""The probe: an open-loop schedule of requests, the channel each one takes, the processes that run it,
and the benchmark of how fast it keeps its schedule."""
