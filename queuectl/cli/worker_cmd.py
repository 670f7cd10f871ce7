"""`queuectl worker`: start, stop and list worker processes."""
