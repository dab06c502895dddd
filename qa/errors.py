"""The exceptions qa raises on purpose; the CLI and the chat show their message, never a traceback."""

from __future__ import annotations


class QAError(Exception):
    """Base class: something the user can act on, explained in one line."""

    # Set where the error is about the index copied from (`qa index --from-store SOURCE`), so that
    # a hint in it that says "`qa index`" is shown naming that index, not the one copied to.
    about_source: bool = False


class ConfigError(QAError):
    """An option or environment setting has a value qa cannot use."""


class IngestError(QAError):
    """A file could not be read as an article."""


class ModelError(QAError):
    """The embedding model could not be found or loaded."""


class IndexMissingError(QAError):
    """There is no index where one was expected."""


class IndexMismatchError(QAError):
    """The index was built by another format version, model or dimension."""


class IndexCorruptError(QAError):
    """An index file is missing, truncated or disagrees with the metadata."""


class IndexWriteError(QAError):
    """The index could not be written: its disk is full, read-only or failing."""


class IndexLockedError(QAError):
    """Another process is writing to the index."""


class IndexUnavailableError(QAError):
    """The index cannot be read now: another process holds it (a Milvus Lite file serves one
    process at a time), or its server is out of reach. It says nothing of whether it is whole."""


class QueryError(QAError):
    """A question or search query qa cannot work with."""


class LLMError(QAError):
    """A model server could not be reached or did not answer as an OpenAI-compatible server does."""


def naming_the_index(message: str, typed: str | None) -> str:
    """`message` with each `qa index` fix it suggests naming the index as `typed` ("--index DIR",
    "--store STORE"): the library names the fix as `qa index --rebuild`, which run as it is would
    rebuild the default index, not the one the user named or a server serves."""
    if not typed:
        return message
    return (message.replace("`qa index --rebuild", f"`qa index --rebuild {typed}")
            .replace("`qa index PATH --rebuild`", f"`qa index PATH --rebuild {typed}`")
            .replace("`qa index PATH`", f"`qa index PATH {typed}`")
            .replace("`qa index`", f"`qa index {typed}`")  # "run `qa index` to upgrade it in place"
            .replace("`qa index --forget", f"`qa index {typed} --forget"))
