"""Reading a run's stored output as one byte stream with absolute offsets, and decoding it as
text stream by stream, for `logs --follow` and the console's log viewer."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Iterable

from .store.base import Output

MARKER = 0  # the stream of a Piece that stands for bytes that are missing


@dataclass(frozen=True)
class Piece:
    stream: int  # 1 stdout, 2 stderr, 0 a marker (data is the number of bytes skipped)
    data: bytes
    skipped: int = 0


@dataclass(frozen=True)
class TextPiece:
    """A Piece decoded: `text` for streams 1 and 2; a marker keeps `skipped`."""

    stream: int
    text: str
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
                out.append(Piece(MARKER, b"", skipped=offset - position))
                position = offset
            out.append(Piece(stream, data[position - offset:]))
            position = end
        offset = end
    return out, position


class StreamDecoder:
    """UTF-8 text of a run's output, one incremental decoder per stream kept across calls.

    Output is stored in chunks cut wherever a read ended, so a character's bytes can sit in two
    chunks (or arrive in two refreshes): decoded chunk by chunk it would become two U+FFFD.
    Here an incomplete character at the end of a chunk is held back until its next bytes on the
    same stream arrive; bytes that are invalid (or a character cut by a gap, or left incomplete
    when the run ended) still become U+FFFD, so the text never loses track of the bytes.
    """

    def __init__(self) -> None:
        self._decoders: dict[int, codecs.IncrementalDecoder] = {}

    def decode(self, stream: int, data: bytes) -> str:
        """The text of `data`, the next bytes of `stream`; an incomplete character at the end
        is held back for the next call (or `flush`)."""
        decoder = self._decoders.get(stream)
        if decoder is None:
            decoder = self._decoders[stream] = codecs.getincrementaldecoder("utf-8")("replace")
        return decoder.decode(data)

    def flush(self) -> list[tuple[int, str]]:
        """End every stream: what each held back, as U+FFFD, for the streams that held some.
        Call at a gap in the output and when the run has ended."""
        ended = [(stream, decoder.decode(b"", final=True))
                 for stream, decoder in sorted(self._decoders.items())]
        return [(stream, text) for stream, text in ended if text]

    def reset(self) -> None:
        """Forget everything held back (the text restarts: another attempt, a cleared view)."""
        self._decoders.clear()

    def texts(self, new: Iterable[Piece], *, final: bool = False) -> list[TextPiece]:
        """`new` decoded in order; a marker first ends the streams (the bytes after it do not
        continue the ones before). `final`: the run has ended, flush the streams at the end."""
        out: list[TextPiece] = []
        for piece in new:
            if piece.stream == MARKER:
                out.extend(TextPiece(stream, text) for stream, text in self.flush())
                out.append(TextPiece(MARKER, "", piece.skipped))
                continue
            text = self.decode(piece.stream, piece.data)
            if text:
                out.append(TextPiece(piece.stream, text))
        if final:
            out.extend(TextPiece(stream, text) for stream, text in self.flush())
        return out
