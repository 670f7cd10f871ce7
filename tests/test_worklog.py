"""A worker's buffered log: every line kept, stamped when logged, written in few writes."""

from __future__ import annotations

import io

from queuectl.worklog import LineLog


class Stream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def make(**kw):
    clock = {"mono": 100.0, "wall": 1_700_000_000.0}
    stream = Stream()
    log = LineLog(stream, "w-1", monotonic=lambda: clock["mono"], wall=lambda: clock["wall"],
                  **kw)
    return log, stream, clock


def test_lines_wait_for_a_flush_and_keep_their_order_and_stamps():
    log, stream, clock = make()
    log("start a")
    clock["wall"] += 1
    log("completed a")
    assert stream.getvalue() == ""
    log.flush()
    lines = stream.getvalue().splitlines()
    assert [line.split(" ", 2)[1:] for line in lines] == [["w-1", "start a"],
                                                          ["w-1", "completed a"]]
    assert lines[0].split()[0] != lines[1].split()[0]  # each stamped when it was logged
    assert stream.writes == 1


def test_a_busy_log_writes_once_its_oldest_line_is_old_enough():
    log, stream, clock = make(after=0.1)
    for i in range(50):
        log(f"line {i}")
        clock["mono"] += 0.01
    assert stream.getvalue().count("\n") >= 40  # nothing waits much longer than 0.1 s
    assert stream.writes <= 6
    log.flush()
    assert stream.getvalue().count("\n") == 50


def test_an_empty_flush_writes_nothing_and_write_errors_are_ignored():
    log, stream, _ = make()
    log.flush()
    assert stream.writes == 0
    stream.close()
    log("into a closed stream")
    log.flush()  # no exception
