"""The project's ParquetDataset saves atomically: a save killed between write and rename leaves the previous
version the newest, and no partial file behind."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io.core import Version

from allmrec_pipeline.datasets import ParquetDataset


def _versioned(root, save: str | None) -> ParquetDataset:
    return ParquetDataset(filepath=str(root / "t.parquet"), version=Version(None, save))


def test_a_save_killed_halfway_leaves_the_previous_version_the_newest(tmp_path, monkeypatch):
    _versioned(tmp_path, "2026-01-01T00.00.00.000Z").save(pd.DataFrame({"a": [1, 2]}))
    second = _versioned(tmp_path, "2026-01-02T00.00.00.000Z")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies between the write and the rename

    monkeypatch.setattr(second._fs, "mv", killed)
    with pytest.raises(KeyboardInterrupt):
        second.save(pd.DataFrame({"a": [3]}))
    monkeypatch.undo()
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["t.parquet/2026-01-01T00.00.00.000Z/t.parquet"]
    pd.testing.assert_frame_equal(_versioned(tmp_path, None).load(), pd.DataFrame({"a": [1, 2]}))


def test_it_saves_and_loads_like_kedro_datasets_parquet(tmp_path):
    frame = pd.DataFrame({"item_id": ["a", "b"], "n": [1, 2]})
    dataset = ParquetDataset(filepath=str(tmp_path / "plain.parquet"), save_args={"index": False})
    dataset.save(frame)
    pd.testing.assert_frame_equal(dataset.load(), frame)
    assert [p.name for p in tmp_path.iterdir()] == ["plain.parquet"]
