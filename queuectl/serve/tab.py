"""The process behind one browser tab: the console over QUEUECTL_DB, watching only, under
Textual's web driver (textual-serve set it in the environment). It quits when `serve` goes away."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

PARENT_CHECK = 1.0  # seconds between looks at whether `serve` is still there


def _quit_when_orphaned(parent: int) -> None:
    """`serve` was killed without closing this tab: quit (SIGTERM lets Textual end cleanly),
    and leave at once if that has not worked a few seconds later."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    os._exit(1)


def main() -> int:
    from ..errors import QueueError
    from ..store import display_location, open_store

    location = os.environ.get("QUEUECTL_DB", "")
    if not location:
        print("error: no store given (QUEUECTL_DB is not set)", file=sys.stderr)
        return 2
    threading.Thread(target=_quit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    try:
        open_store(location, create=False).close()  # a clear error now, not a blank page later
        from queuectl_tui.app import make_app

        make_app(lambda: open_store(location, create=False), pool=None,
                 store_text=display_location(location)).run()
    except QueueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
