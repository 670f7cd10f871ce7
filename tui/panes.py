"""The four job panes: keyed tables updated by diffing rows by job id; their columns fit the
pane's width (columns.py) and are laid out again only when it changes."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from .columns import COLUMNS, fit
from .snapshot import PaneData, Row

TONES = {
    "retry": "yellow",
    "delayed": "cyan",
    "cancelled": "magenta",
    "blocked": "blue",
    "stuck": "bold red",
}
TONED = {"pending": "when", "dead": "error"}  # the column a row's tone colours
DEAD_ERROR_STYLE = "red"
SCROLLBAR = 1  # cells kept for the vertical scrollbar (queuectl.tcss), shown or not


class JobTable(DataTable):
    """One pane. Row keys are job ids; `apply` touches only the rows and cells that changed.

    Until the person moves in it, a pane follows its top row (the newest job; in Pending the
    next to run): the cursor stays on the top row and the view at the top as rows arrive. Once
    they move the cursor or scroll away, the job they chose stays selected and on the same line
    of the screen while rows come and go; Home (or going back to the top) follows again.
    """

    BINDINGS = [
        Binding("enter", "select_cursor", "Log"),
        Binding("home", "scroll_top", "First", show=False),
        Binding("end", "scroll_bottom", "Last", show=False),
    ]

    def __init__(self, pane: str, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.pane = pane
        self.following = True  # False once the person chose a row or scrolled away
        self._rows: dict[str, Row] = {}
        self._order: list[str] = []
        self._index = {column.key: n for n, column in enumerate(COLUMNS[pane])}
        self._shown: tuple[str, ...] = ()  # the keys of the columns on screen
        self._layout(fit(pane, 80))

    # -- columns
    def _layout(self, columns) -> None:
        self._shown = tuple(column.key for column, _ in columns)
        for column, width in columns:
            self.add_column(column.label, width=width, key=column.key)

    def on_resize(self) -> None:
        columns = fit(self.pane, self.size.width - SCROLLBAR, self.cell_padding)
        if tuple(c.key for c, _ in columns) == self._shown and all(
                self.columns[c.key].width == w for c, w in columns):
            return
        selected, top = self.selected_id(), round(self.scroll_y)
        with self.app.batch_update():
            self.clear(columns=True)
            self._layout(columns)
            for key in self._order:
                self.add_row(*self._cells(self._rows[key]), key=key)
            if selected is not None:
                self.move_cursor(row=self.get_row_index(selected), animate=False, scroll=False)
            self.call_after_refresh(self.scroll_to, y=top, animate=False, force=True)

    def selected_id(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except (RowDoesNotExist, IndexError):
            return None

    def _cell(self, row: Row, key: str) -> Text:
        cell = Text(row.cells[self._index[key]], no_wrap=True, overflow="ellipsis")
        if key == TONED.get(self.pane):
            if row.tone in TONES:
                cell.stylize(TONES[row.tone])
            elif self.pane == "dead":
                cell.stylize(DEAD_ERROR_STYLE)
        return cell

    def _cells(self, row: Row) -> list[Text]:
        return [self._cell(row, key) for key in self._shown]

    # -- the person moves: every way the cursor or the view moves by hand decides `following`
    def _moved(self) -> None:
        self.following = self.cursor_row <= 0 and self.scroll_target_y <= 0

    def action_cursor_up(self) -> None:
        super().action_cursor_up()
        self._moved()

    def action_cursor_down(self) -> None:
        super().action_cursor_down()
        self._moved()

    def action_page_up(self) -> None:
        super().action_page_up()
        self._moved()

    def action_page_down(self) -> None:
        super().action_page_down()
        self._moved()

    def action_scroll_top(self) -> None:
        super().action_scroll_top()
        self.scroll_to(y=0, animate=False)
        self.following = True

    def action_scroll_bottom(self) -> None:
        super().action_scroll_bottom()
        self._moved()

    async def _on_click(self, event) -> None:
        await super()._on_click(event)
        self._moved()

    def _on_mouse_scroll_down(self, event) -> None:
        super()._on_mouse_scroll_down(event)
        self._moved()

    def _on_mouse_scroll_up(self, event) -> None:
        super()._on_mouse_scroll_up(event)
        self._moved()

    def apply(self, data: PaneData) -> int:
        """Bring the table to `data.rows`; returns how many rows or cells were touched."""
        wanted = {row.key: row for row in data.rows}
        order = [row.key for row in data.rows]
        if order == self._order and all(self._rows[k] == wanted[k] for k in order):
            return 0
        selected = self.selected_id()
        line = self.cursor_row - round(self.scroll_target_y)  # the selection's screen line
        touched = 0
        with self.app.batch_update():
            for key in [k for k in self._order if k not in wanted]:
                self.remove_row(key)
                del self._rows[key]
                touched += 1
            for key, row in wanted.items():
                old = self._rows.get(key)
                if old is None:
                    self.add_row(*self._cells(row), key=key)
                    touched += 1
                elif old != row:
                    for column in self._shown:
                        index = self._index[column]
                        if old.cells[index] != row.cells[index] or old.tone != row.tone:
                            self.update_cell(key, column, self._cell(row, column))
                            touched += 1
                self._rows[key] = row
            if order != self._order_in_table():
                rank = {row.cells[0]: index for index, row in enumerate(data.rows)}
                self.sort("id", key=lambda cell: rank[cell.plain])
            self._order = order
            self._place(selected if selected in wanted else None, line)
        return touched

    def _place(self, selected: str | None, line: int) -> None:
        """Following: the cursor on the top row, the view at the top. Else `selected` stays
        selected on screen line `line` (a row that left: the cursor keeps its index)."""
        if not self.row_count:
            return
        if self.following:
            self.move_cursor(row=0, animate=False, scroll=False)
            top = 0
        elif selected is not None:
            row = self.get_row_index(selected)
            self.move_cursor(row=row, animate=False, scroll=False)
            top = max(0, row - line)
        else:
            top = round(self.scroll_target_y)
        # After the refresh: the table's height is only known once the new rows are measured.
        self.call_after_refresh(self.scroll_to, y=top, animate=False, force=True)

    def _order_in_table(self) -> list[str]:
        return [row.key.value for row in self.ordered_rows]
