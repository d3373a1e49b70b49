"""pysteps: ship apps to Kubernetes from one Jenkins pipeline step."""

__version__ = "0.1.0.dev0"
