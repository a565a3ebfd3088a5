"""deploy lab: see what deployment strategies really do to clients."""

__version__ = "0.1.0"
