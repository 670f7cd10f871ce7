"""OutputCapture: head and tail exact, dropped counted, memory capped."""

from __future__ import annotations

import random

import pytest

from queuectl.output import STDERR, STDOUT, OutputCapture


def runs(chunks):
    """Adjacent same-stream chunks merged, empty ones dropped: the comparable form."""
    out = []
    for stream, data in chunks:
        if not data:
            continue
        if out and out[-1][0] == stream:
            out[-1] = (stream, out[-1][1] + data)
        else:
            out.append((stream, bytes(data)))
    return out


def reference(fed, limit):
    """(head runs, tail runs, dropped) computed from the whole fed byte sequence."""
    flat = [(stream, data[i:i + 1]) for stream, data in fed for i in range(len(data))]
    head_n = min(limit // 2, len(flat))
    tail_start = max(head_n, len(flat) - (limit - limit // 2))
    return runs(flat[:head_n]), runs(flat[tail_start:]), tail_start - head_n


def check_invariants(cap):
    tail, dropped = cap.tail_snapshot()
    assert cap.head_bytes + dropped + sum(len(d) for _, d in tail) == cap.total
    assert sum(len(d) for _, d in tail) <= cap.tail_limit
    assert cap.head_bytes <= cap.head_limit
    assert all(data for _, data in tail)
    assert all(a[0] != b[0] for a, b in zip(tail, tail[1:]))


@pytest.mark.parametrize("limit, feeds, head, tail, dropped", [
    (10, [], [], [], 0),
    (10, [(STDOUT, b"")], [], [], 0),
    (10, [(STDOUT, b"abc")], [(STDOUT, b"abc")], [], 0),
    (10, [(STDOUT, b"abcde")], [(STDOUT, b"abcde")], [], 0),
    (10, [(STDOUT, b"abcdefg")], [(STDOUT, b"abcde")], [(STDOUT, b"fg")], 0),
    (10, [(STDOUT, b"abcdefghij")], [(STDOUT, b"abcde")], [(STDOUT, b"fghij")], 0),
    (10, [(STDOUT, b"abcdefghijklm")], [(STDOUT, b"abcde")], [(STDOUT, b"ijklm")], 3),
    # a chunk straddling the head limit is split exactly
    (10, [(STDOUT, b"abc"), (STDERR, b"defgh")],
     [(STDOUT, b"abc"), (STDERR, b"de")], [(STDERR, b"fgh")], 0),
    # the oldest tail chunk is trimmed partially
    (6, [(STDOUT, b"abc"), (STDERR, b"de"), (STDOUT, b"fg")],
     [(STDOUT, b"abc")], [(STDERR, b"e"), (STDOUT, b"fg")], 1),
    # whole tail chunks dropped
    (6, [(STDOUT, b"abc"), (STDERR, b"d"), (STDERR, b"e"), (STDOUT, b"fgh")],
     [(STDOUT, b"abc")], [(STDOUT, b"fgh")], 2),
    # one chunk bigger than the whole tail
    (4, [(STDOUT, b"ab"), (STDERR, b"cd"), (STDOUT, b"0123456789")],
     [(STDOUT, b"ab")], [(STDOUT, b"89")], 10),
    # odd limit: head gets limit // 2, tail the rest
    (5, [(STDERR, b"abcdefgh")], [(STDERR, b"ab")], [(STDERR, b"fgh")], 3),
    (1, [(STDOUT, b"abc")], [], [(STDOUT, b"c")], 2),
    (0, [(STDOUT, b"abc"), (STDERR, b"de")], [], [], 5),
    # same-stream neighbours are merged
    (100, [(STDOUT, b"a"), (STDOUT, b"b"), (STDERR, b"c"), (STDERR, b"d")],
     [(STDOUT, b"ab"), (STDERR, b"cd")], [], 0),
    # binary and invalid UTF-8 are kept as bytes
    (8, [(STDOUT, b"\xff\x00\xfe\xc3"), (STDERR, b"\x28\x80\x81\x82\x83")],
     [(STDOUT, b"\xff\x00\xfe\xc3")], [(STDERR, b"\x80\x81\x82\x83")], 1),
])
def test_table(limit, feeds, head, tail, dropped):
    cap = OutputCapture(limit)
    for stream, data in feeds:
        cap.feed(stream, data)
    assert cap.take_head() == head
    assert cap.tail_snapshot() == (tail, dropped)
    assert cap.dropped == dropped
    assert cap.total == sum(len(d) for _, d in feeds)
    check_invariants(cap)


def test_take_head_returns_only_new_bytes():
    cap = OutputCapture(10)
    cap.feed(STDOUT, b"ab")
    assert cap.take_head() == [(STDOUT, b"ab")]
    assert cap.take_head() == []
    cap.feed(STDOUT, b"cd")
    cap.feed(STDERR, b"efg")
    assert cap.take_head() == [(STDOUT, b"cd"), (STDERR, b"e")]
    cap.feed(STDOUT, b"xyz")
    assert cap.take_head() == []


def test_tail_dirty():
    cap = OutputCapture(4)
    assert not cap.tail_dirty
    cap.feed(STDOUT, b"ab")  # head only
    assert not cap.tail_dirty
    cap.feed(STDOUT, b"c")
    assert cap.tail_dirty
    assert cap.tail_snapshot() == ([(STDOUT, b"c")], 0)
    assert not cap.tail_dirty
    cap.feed(STDOUT, b"")
    assert not cap.tail_dirty
    cap.feed(STDERR, b"de")
    assert cap.tail_dirty
    assert cap.tail_snapshot() == ([(STDERR, b"de")], 1)


def test_zero_limit_counts_drops_as_changes():
    cap = OutputCapture(0)
    cap.feed(STDERR, b"abc")
    assert cap.tail_dirty
    assert cap.tail_snapshot() == ([], 3)
    assert cap.take_head() == []


def test_feed_accepts_bytearray_and_memoryview():
    cap = OutputCapture(4)
    cap.feed(STDOUT, bytearray(b"ab"))
    cap.feed(STDERR, memoryview(b"cdef"))
    assert cap.take_head() == [(STDOUT, b"ab")]
    assert cap.tail_snapshot() == ([(STDERR, b"ef")], 2)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        OutputCapture(-1)
    with pytest.raises(ValueError):
        OutputCapture(4).feed(3, b"x")


def test_memory_stays_bounded_under_volume():
    limit = 64 * 1024
    cap = OutputCapture(limit)
    block = bytes(range(256)) * 256  # 64 KiB
    for i in range(400):  # 25 MiB, both streams, odd sizes
        cap.feed(STDOUT if i % 3 else STDERR, block[: 65536 - i])
        assert cap.tail_bytes <= cap.tail_limit
        assert sum(len(d) for _, d in cap._tail) == cap.tail_bytes
        assert len(cap._tail) <= 3
    assert cap.tail_bytes == cap.tail_limit
    check_invariants(cap)


def test_memory_bounded_with_tiny_writes():
    cap = OutputCapture(1000)
    for i in range(20000):
        cap.feed(STDOUT, b"x" * (i % 7))
    assert cap.tail_bytes == 500
    assert len(cap._tail) == 1


@pytest.mark.parametrize("seed", range(150))
def test_random_against_reference(seed):
    rng = random.Random(seed)
    limit = rng.choice([0, 1, 2, 3, 7, 16, 33, 100, 257])
    cap = OutputCapture(limit)
    fed, taken = [], []
    for _ in range(rng.randint(0, 60)):
        stream = rng.choice([STDOUT, STDERR])
        size = rng.choice([0, 1, 2, 5, rng.randint(0, 40), rng.randint(0, 600)])
        data = bytes(rng.randrange(256) for _ in range(size))
        cap.feed(stream, data)
        fed.append((stream, data))
        if rng.random() < 0.3:
            taken += cap.take_head()
        if rng.random() < 0.3:
            head, tail, dropped = reference(fed, limit)
            assert cap.tail_snapshot() == (tail, dropped)
            assert not cap.tail_dirty
        check_invariants(cap)
    taken += cap.take_head()
    head, tail, dropped = reference(fed, limit)
    assert runs(taken) == head
    assert cap.tail_snapshot() == (tail, dropped)
    assert cap.total == sum(len(d) for _, d in fed)
    assert cap.dropped == dropped
