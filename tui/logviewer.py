"""The log viewer: one attempt's output, stdout and stderr styled apart, tailing while it runs.

Output is untrusted: it is decoded as a stream per stdout/stderr (invalid UTF-8 replaced), made
inert by `sanitize.clean`, and rendered as Rich `Text` (never markup). Lines are clipped and the
number of lines kept is capped, and only the visible lines are rendered, so huge output cannot
freeze the UI.
"""

from __future__ import annotations

from typing import Iterable

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.geometry import Size
from textual.message import Message
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Footer, Static

from queuectl.durations import format_duration, relative
from queuectl.logview import MARKER, Piece, StreamDecoder
from queuectl.sanitize import clean, one_line

from .main_screen import fit_footer
from .snapshot import LogData, LogRequest, depends_text

MAX_LINES = 5000
MAX_LINE_CHARS = 4096
STATE_STYLES = {"pending": "bold", "failed": "bold yellow", "running": "bold green",
                "completed": "green", "dead": "bold red"}


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


class OutputView(ScrollView, can_focus=True):
    """Lines of (stream, text) segments; appends continue an open last line.

    Bytes are decoded as streams (`StreamDecoder`), so a character split between two stored
    chunks shows whole. While `following`, the view stays at the bottom as output arrives, like
    `less +F`; the person scrolling up pauses it, End (or scrolling back down to the bottom)
    resumes it.
    """

    BINDINGS = [Binding("end", "follow", "Follow")]
    COMPONENT_CLASSES = {"output--stderr", "output--marker", "output--clipped"}

    class FollowChanged(Message):
        """`following` changed (the screen shows it)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lines: list[list[tuple[int, str]]] = []
        self.following = True
        self.dropped_lines = 0
        self._decoder = StreamDecoder()
        self._open = False  # the last line has no newline yet
        self._clipped: dict[int, int] = {}  # id(line) -> bytes not kept
        self._width = 0

    def clear(self) -> None:
        self.lines.clear()
        self._decoder.reset()
        self._clipped.clear()
        self._open = False
        self._width = 0
        self.dropped_lines = 0
        self.virtual_size = Size(0, 0)
        self.scroll_to(0, 0, animate=False, immediate=True)
        self.refresh()

    def text(self) -> str:
        """Everything shown, as plain text (for tests)."""
        return "\n".join(self._line_text(i).plain for i in range(len(self.lines)))

    def append(self, pieces: Iterable[Piece], *, final: bool = False) -> None:
        """Show `pieces`, the next bytes of the output; `final`: the run has ended."""
        texts = self._decoder.texts(pieces, final=final)
        if not texts:
            return
        for piece in texts:
            if piece.stream == MARKER:
                self._open = False
                self.lines.append([(MARKER, f"··· {_size(piece.skipped)} of output not kept ···")])
                continue
            parts = piece.text.split("\n")
            for index, part in enumerate(parts):
                if index:
                    self._open = False
                if part or index == len(parts) - 1:
                    self._add(piece.stream, part)
        if len(self.lines) > MAX_LINES:
            drop = len(self.lines) - MAX_LINES
            for line in self.lines[:drop]:
                self._clipped.pop(id(line), None)
            del self.lines[:drop]
            self.dropped_lines += drop
            if not self.following:  # keep the lines the person reads where they are
                self.scroll_to(y=max(0, self.scroll_y - drop), animate=False, immediate=True)
        self.virtual_size = Size(self._width, len(self.lines))
        self.refresh()
        if self.following:
            self.scroll_end(animate=False, x_axis=False)  # once the new size is laid out

    def _add(self, stream: int, text: str) -> None:
        if not self._open:
            self.lines.append([])
            self._open = True
        if not text:
            return
        line = self.lines[-1]
        room = MAX_LINE_CHARS - sum(len(t) for _, t in line)
        if room < len(text):
            cut = text[max(room, 0):]
            self._clipped[id(line)] = self._clipped.get(id(line), 0) + len(cut.encode())
            text = text[:max(room, 0)]
        if text:
            if line and line[-1][0] == stream:
                line[-1] = (stream, line[-1][1] + text)
            else:
                line.append((stream, text))
        self._width = max(self._width, min(cell_len(self._line_text(len(self.lines) - 1).plain),
                                           MAX_LINE_CHARS * 2))

    def on_resize(self) -> None:
        """A new size moves the bottom (the screen's header grows, the terminal shrinks): a
        following view goes along with it."""
        if self.following:
            self.scroll_end(animate=False, x_axis=False)

    # -- following: every way the person scrolls decides it
    def action_follow(self) -> None:
        self._set_following(True)
        self.scroll_end(animate=False, x_axis=False)

    def _set_following(self, following: bool) -> None:
        if following != self.following:
            self.following = following
            self.post_message(self.FollowChanged())

    def _scrolled(self) -> None:
        self._set_following(self.scroll_target_y >= self.max_scroll_y)

    def action_scroll_up(self) -> None:
        super().action_scroll_up()
        self._scrolled()

    def action_scroll_down(self) -> None:
        super().action_scroll_down()
        self._scrolled()

    def action_page_up(self) -> None:
        super().action_page_up()
        self._scrolled()

    def action_page_down(self) -> None:
        super().action_page_down()
        self._scrolled()

    def action_scroll_home(self) -> None:
        super().action_scroll_home()
        self._scrolled()

    def _on_mouse_scroll_up(self, event) -> None:
        super()._on_mouse_scroll_up(event)
        self._scrolled()

    def _on_mouse_scroll_down(self, event) -> None:
        super()._on_mouse_scroll_down(event)
        self._scrolled()

    def _on_scroll_to(self, message) -> None:  # the scrollbar dragged
        super()._on_scroll_to(message)
        self._scrolled()

    def _on_scroll_up(self, event) -> None:  # the scrollbar clicked above the thumb
        super()._on_scroll_up(event)
        self._scrolled()

    def _on_scroll_down(self, event) -> None:
        super()._on_scroll_down(event)
        self._scrolled()

    # -- rendering
    def _line_text(self, index: int) -> Text:
        line = self.lines[index]
        text = Text(no_wrap=True, end="")
        for stream, part in line:
            if part.endswith("\r"):
                part = part[:-1]
            piece = clean(part).expandtabs(8)
            if stream == MARKER:
                style = self.get_component_rich_style("output--marker", partial=True)
            elif stream == 2:
                style = self.get_component_rich_style("output--stderr", partial=True)
            else:
                style = ""
            text.append(piece, style)
        clipped = self._clipped.get(id(line))
        if clipped:
            text.append(f" … line clipped, {_size(clipped)} more",
                        self.get_component_rich_style("output--clipped", partial=True))
        return text

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        base = self.rich_style
        if index >= len(self.lines):
            return Strip.blank(width, base)
        text = self._line_text(index)
        segments = list(text.render(self.app.console))
        strip = Strip(segments).simplify()
        return strip.crop_extend(scroll_x, scroll_x + width, base).apply_style(base)


class LogScreen(Screen):
    """The selected job's output; `[`/`]` switch attempts, escape goes back."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("left_square_bracket", "attempt(-1)", "Prev attempt"),
        Binding("right_square_bracket", "attempt(1)", "Next attempt"),
        Binding("r", "app.retry_job", "Retry"),
        Binding("c", "app.cancel_job", "Cancel"),
        Binding("g", "app.run_now", "Run now", show=False),
        Binding("D", "app.remove_job", "Remove", show=False),
        Binding("e", "app.edit_job", "Edit", show=False),
    ]

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.attempt: int | None = None  # None: follow the latest attempt
        self.shown_attempt: int | None = None
        self.byte_offset = 0
        self.data: LogData | None = None
        self.log_ready = False
        self._now = 0.0

    def compose(self) -> ComposeResult:
        yield Static(id="log-title")
        yield Static(id="log-info")
        yield OutputView(id="output")
        yield Footer()

    def on_mount(self) -> None:
        self.log_ready = True
        self.query_one("#log-title", Static).update(Text(f" job {one_line(self.job_id)}"))
        self.query_one(OutputView).focus()
        self.app.request_refresh()

    def on_resize(self) -> None:
        fit_footer(self.query_one(Footer), self.size.width)

    def request(self) -> LogRequest:
        return LogRequest(self.job_id, self.attempt, self.byte_offset)

    @property
    def view(self) -> OutputView:
        return self.query_one(OutputView)

    def on_unmount(self) -> None:
        self.log_ready = False

    def apply(self, data: LogData, now: float) -> None:
        """Show the new output in `data` if it continues what is shown; else ask again."""
        if data.job_id != self.job_id or data.requested != self.attempt or not self.log_ready:
            return
        try:
            self._apply(data, now)
        except NoMatches:  # the screen is being taken down
            pass

    def _apply(self, data: LogData, now: float) -> None:
        if data.attempt != self.shown_attempt:
            self.view.clear()
            self.shown_attempt, self.byte_offset = data.attempt, 0
            if data.start != 0:
                self.app.request_refresh()
                return
        run = next((r for r in data.runs if r.attempt == data.attempt), None)
        ended = run is not None and run.finished_at is not None
        if data.start != self.byte_offset:  # built before the last apply: ask for the rest
            self.app.request_refresh()
        elif data.pieces or ended:
            self.view.append(data.pieces, final=ended)
            self.byte_offset = data.end
        self.data, self._now = data, now
        self._describe(data, now)

    def on_output_view_follow_changed(self, message: OutputView.FollowChanged) -> None:
        if self.data is not None:
            self._describe(self.data, self._now)

    def _describe(self, data: LogData, now: float) -> None:
        title = Text(" job ")
        title.append(one_line(self.job_id), "bold")
        info = Text(" ")
        if data.job is None:
            title.append("  (no longer in the store)", "italic")
        else:
            job = data.job
            title.append(f"  {job.state.value}", STATE_STYLES.get(job.state.value, ""))
            title.append("  $ ")
            title.append(one_line(job.command, 200))
            deps = depends_text(data.deps)
            if deps:
                info.append(one_line(deps, 200), "bold blue" if job.blocked else "dim")
                info.append(" · ")
            run = next((r for r in data.runs if r.attempt == data.attempt), None)
            if run is None:
                info.append("not run yet", "italic")
            else:
                following = ""
                if self.attempt is None:
                    following = " (latest, live)" if run.finished_at is None else " (latest)"
                if run.finished_at is None:
                    if self.view.following:
                        info.append("following", "bold green")
                    else:
                        info.append("paused — End to follow", "bold black on yellow")
                    info.append(" · ")
                info.append(f"attempt {run.attempt} of {len(data.runs)}{following}", "bold")
                took = (run.finished_at or now) - run.started_at
                info.append(f" · started {relative(run.started_at, now)}"
                            f" · {'took' if run.finished_at else 'running for'} "
                            f"{format_duration(took)}")
                if run.outcome:
                    info.append(f" · {run.outcome}")
                if run.signal or run.exit_code is not None:
                    info.append(f" · {'signal ' + run.signal if run.signal else 'exit ' + str(run.exit_code)}")
                info.append(f" · {_size(run.output_bytes)}")
                if run.error:
                    info.append(" · ")
                    info.append(one_line(run.error, 120), "red")
                info.append("   stdout ", "dim")
                info.append("stderr", self.view.get_component_rich_style("output--stderr", partial=True))
        self.query_one("#log-title", Static).update(title)
        self.query_one("#log-info", Static).update(info)

    def action_attempt(self, step: int) -> None:
        if self.data is None or not self.data.runs:
            return
        latest = max(r.attempt for r in self.data.runs)
        current = self.attempt if self.attempt is not None else (self.shown_attempt or latest)
        target = max(1, min(latest, current + step))
        self.attempt = None if target == latest else target
        self.shown_attempt = None
        self.byte_offset = 0
        self.view.clear()
        self.app.request_refresh()
