"""Messages the console's thread workers post to the app; handlers on the UI thread apply them."""

from __future__ import annotations

from textual.message import Message

from .snapshot import Snapshot


class SnapshotReady(Message):
    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReady)


class RefreshFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class RefreshDone(Message):
    pass


class StoreChanged(Message):
    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StoreChanged)


class WatchFailed(Message):
    """The store watcher cannot watch: the console only refreshes on its timer."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class PoolChanged(Message):
    """The console's pool did what a key asked: `text` says what."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class Notice(Message):
    def __init__(self, text: str, severity: str = "information") -> None:
        super().__init__()
        self.text = text
        self.severity = severity


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
