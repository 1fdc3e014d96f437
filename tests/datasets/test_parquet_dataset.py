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


def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_an_unreadable_newest_version_is_passed_over_with_a_warning(tmp_path, caplog):
    _versioned(tmp_path, "2026-01-01T00.00.00.000Z").save(pd.DataFrame({"a": [1, 2]}))
    _versioned(tmp_path, "2026-01-02T00.00.00.000Z").save(pd.DataFrame({"a": [3]}))
    newest = tmp_path / "t.parquet/2026-01-02T00.00.00.000Z/t.parquet"
    _truncate(newest)
    with caplog.at_level("WARNING"):
        loaded = _versioned(tmp_path, None).load()
    pd.testing.assert_frame_equal(loaded, pd.DataFrame({"a": [1, 2]}))
    assert f"{newest} is unreadable" in caplog.text and "2026-01-01T00.00.00.000Z" in caplog.text
    assert newest.exists()  # nothing is deleted behind the user's back


def test_a_pinned_or_only_version_that_is_unreadable_is_a_clear_error(tmp_path):
    from kedro.io import DatasetError

    _versioned(tmp_path, "2026-01-01T00.00.00.000Z").save(pd.DataFrame({"a": [1, 2]}))
    _truncate(tmp_path / "t.parquet/2026-01-01T00.00.00.000Z/t.parquet")
    with pytest.raises(DatasetError, match=r"is unreadable .* no earlier version reads either: rerun"):
        _versioned(tmp_path, None).load()
    pinned = ParquetDataset(
        filepath=str(tmp_path / "t.parquet"), version=Version("2026-01-01T00.00.00.000Z", None)
    )
    with pytest.raises(DatasetError, match="this pinned version"):
        pinned.load()


def test_a_truncated_newest_checkpoint_is_passed_over_too(tmp_path):
    import torch

    from allmrec_pipeline.datasets import SafetensorsDataset
    from allmrec_pipeline.models.checkpoint import Checkpoint

    def dataset(save):
        return SafetensorsDataset(filepath=str(tmp_path / "m.safetensors"), version=Version(None, save))

    dataset("2026-01-01T00.00.00.000Z").save(Checkpoint({"w": torch.ones(3)}, {"kind": "x"}))
    dataset("2026-01-02T00.00.00.000Z").save(Checkpoint({"w": torch.zeros(300)}, {"kind": "x"}))
    _truncate(tmp_path / "m.safetensors/2026-01-02T00.00.00.000Z/m.safetensors")
    assert torch.equal(dataset(None).load().tensors["w"], torch.ones(3))
