"""queuectl_tui: the Textual console; the entry point is `queuectl_tui.app.make_app`."""
