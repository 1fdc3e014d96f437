"""Loading past an unreadable newest version: a versioned dataset whose latest file cannot be read (truncated by
a full disk, a copy cut short, a hand edit) loads the newest earlier version that reads, with a WARNING naming
both, instead of blocking every later run until someone deletes the folder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import TypeVar

from kedro.io import DatasetError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ReadableVersionMixin:
    """For a subclass of Kedro's ``AbstractVersionedDataset``: ``_load_readable(read, unreadable)`` reads the
    load version with ``read(path)``; when that raises one of ``unreadable`` and no version was pinned (``kedro run
    --load-versions``), it tries the earlier versions, newest first. A pinned version, an unversioned file, or no
    readable version at all is a ``DatasetError`` naming the file and the way out."""

    def _load_readable(self, read: Callable[[str], T], unreadable: tuple[type[BaseException], ...]) -> T:
        path = str(self._get_load_path())
        try:
            return read(path)
        except unreadable as exc:
            error = exc
        pinned = not self._version or self._version.load is not None
        for older in [] if pinned else [p for p in self._get_versions() if p != path]:
            try:
                data = read(older)
            except unreadable:
                continue
            logger.warning(
                "%s is unreadable (%s): loaded the newest readable earlier version, %s. Delete the folder %s "
                "(or rerun the pipeline that writes it) to silence this",
                path,
                _first_line(error),
                older,
                PurePosixPath(path).parent,
            )
            return data
        where = "this pinned version" if pinned else "no earlier version reads either"
        raise DatasetError(
            f"{path} is unreadable ({_first_line(error)}) and {where}: rerun the pipeline that writes it"
            + ("" if pinned else f", or delete the folder {PurePosixPath(path).parent}")
        ) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
