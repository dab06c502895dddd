"""How long work reports its progress: the protocol the indexer reports to, a silent one, and
a Rich display for the terminal."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console


class IndexProgress(Protocol):
    """How the indexer reports progress; the CLI draws it with Rich."""

    def start(self, description: str, total: int) -> None: ...

    def advance(self, amount: int = 1) -> None: ...

    def note(self, message: str) -> None: ...


class SilentProgress:
    """Progress that goes nowhere (library calls, tests)."""

    def start(self, description: str, total: int) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass

    def note(self, message: str) -> None:
        pass


class RichIndexProgress:
    """One bar per phase (reading, chunking, embedding); notes print above the bars."""

    def __init__(self, console: Console, reword: Callable[[str], str] | None = None) -> None:
        # `reword`: how the command shows a note (the CLI names the index the user typed in the
        # commands a note suggests).
        self._reword = reword or (lambda message: message)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = console
        self._progress = Progress(
            TextColumn("[bold]{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._task: int | None = None

    def __enter__(self) -> RichIndexProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def start(self, description: str, total: int) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=max(total, 0))

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)

    def note(self, message: str) -> None:
        from rich.text import Text

        # Text, not markup: a note names files, and "[/x].md" would be read as a closing tag.
        self._progress.console.print(Text(self._reword(message), style="yellow"))
