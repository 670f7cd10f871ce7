"""The stream decoder of stored output: characters split between chunks come out whole."""

from __future__ import annotations

import pytest

from queuectl.logview import MARKER, Piece, StreamDecoder, TextPiece

CAFE = "café ok\n".encode()  # b"caf\xc3\xa9 ok\n"


def decode_in(chunks: list[bytes]) -> str:
    decoder = StreamDecoder()
    return "".join(decoder.decode(1, chunk) for chunk in chunks) + "".join(
        text for _, text in decoder.flush())


@pytest.mark.parametrize("cut", range(len(CAFE) + 1))
def test_a_character_split_anywhere_decodes_whole(cut):
    assert decode_in([CAFE[:cut], CAFE[cut:]]) == "café ok\n"


@pytest.mark.parametrize("text", ["€", "𝄞 clef", "日本語", "a\u0301"])
def test_every_byte_in_its_own_chunk(text):
    data = text.encode()
    assert decode_in([data[i:i + 1] for i in range(len(data))]) == text


@pytest.mark.parametrize("chunks, expected", [
    ([b"caf\xc3"], "caf\ufffd"),  # left incomplete when the run ended: one U+FFFD
    ([b"\xff\xfeok"], "\ufffd\ufffdok"),  # invalid bytes stay visible
    ([b"caf\xc3", b"x"], "caf\ufffdx"),  # the next byte does not continue it
    ([b"\xe2\x82", b"\xac", b"\xe2"], "€\ufffd"),
])
def test_invalid_and_unfinished_bytes_become_replacement_characters(chunks, expected):
    assert decode_in(chunks) == expected


def test_an_incomplete_character_is_held_back_until_its_bytes_arrive():
    decoder = StreamDecoder()
    assert decoder.decode(1, b"caf\xc3") == "caf"
    assert decoder.decode(1, b"\xa9 ok\n") == "é ok\n"
    assert decoder.flush() == []


def test_streams_are_decoded_apart():
    decoder = StreamDecoder()
    assert decoder.decode(1, b"caf\xc3") == "caf"
    assert decoder.decode(2, b"warn \xe2\x82") == "warn "
    assert decoder.decode(1, b"\xa9") == "é"
    assert decoder.decode(2, b"\xac\n") == "€\n"


def test_reset_forgets_what_was_held_back():
    decoder = StreamDecoder()
    decoder.decode(1, b"caf\xc3")
    decoder.reset()
    assert decoder.decode(1, b"\xa9") == "\ufffd"
    assert decoder.flush() == []


def test_texts_end_the_streams_at_a_gap_and_at_the_end():
    decoder = StreamDecoder()
    got = decoder.texts([Piece(1, b"caf\xc3"), Piece(2, b"err\n"), Piece(1, b"\xa9!")])
    assert got == [TextPiece(1, "caf"), TextPiece(2, "err\n"), TextPiece(1, "é!")]
    got = decoder.texts([Piece(1, b"x\xe2\x82"), Piece(MARKER, b"", skipped=10),
                         Piece(1, b"\xacy")])
    assert got == [TextPiece(1, "x"), TextPiece(1, "\ufffd"), TextPiece(MARKER, "", 10),
                   TextPiece(1, "\ufffdy")]
    assert decoder.texts([Piece(2, b"\xf0\x9f")], final=True) == [TextPiece(2, "\ufffd")]
    assert decoder.texts([], final=True) == []
