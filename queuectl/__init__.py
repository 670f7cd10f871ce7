"""queuectl: a background job queue for shell commands."""

__version__ = "0.2.0"
