"""The local Docker engine: containers on a per-run bridge network, nginx published on 127.0.0.1."""
