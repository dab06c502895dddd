"""qa: ask questions of a folder of articles, get answers with citations you can check."""

__version__ = "0.1.0"
