"""Terminal pieces shared by the commands and the demo."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from nexus.api import BatchStatus


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def show_batch(progress: Progress, task: TaskID) -> Callable[[BatchStatus], None]:
    """An `on_progress` callback for `BatchHandle.wait` that moves `task` along."""

    def update(status: BatchStatus) -> None:
        progress.update(task, total=status.total, completed=status.processed + status.failed)

    return update


def summary_grid() -> Table:
    """Two columns, labels in bold: the head of every `show` command."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    return grid
