"""The one error every reader raises for a malformed tree: the message names the file and the
problem, so `tvau data inspect` can print it as is."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset tree that cannot be read as its declared format."""
