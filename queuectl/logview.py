"""Reading a run's stored output as one byte stream with absolute offsets, for `logs --follow`
and the console's log viewer."""

from __future__ import annotations

from dataclasses import dataclass

from .store.base import Output


@dataclass(frozen=True)
class Piece:
    stream: int  # 1 stdout, 2 stderr, 0 a marker (data is the number of bytes skipped)
    data: bytes
    skipped: int = 0


def pieces(output: Output, start: int = 0) -> tuple[list[Piece], int]:
    """The output from absolute byte offset `start` on, with a marker where bytes are missing
    (cut by the output limit, or rolled out of the tail before they could be shown).
    Returns the pieces and the offset to continue from."""
    out: list[Piece] = []
    offset = 0
    position = start
    for index, (stream, data) in enumerate(output.chunks):
        if index == output.tail_start and output.run.dropped_bytes:
            offset += output.run.dropped_bytes
        end = offset + len(data)
        if end > position:
            if offset > position:
                out.append(Piece(0, b"", skipped=offset - position))
                position = offset
            out.append(Piece(stream, data[position - offset:]))
            position = end
        offset = end
    return out, position
