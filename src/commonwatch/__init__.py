"""commonwatch: an open platform for cybersecurity coordination centres."""

__version__ = "0.1.0"
