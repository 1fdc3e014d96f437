"""The JSON, text and Matplotlib datasets save atomically: a save killed between write and rename leaves no file
under the version's name (the previous version stays the newest); a normal save reads back as kedro-datasets'."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from kedro.io.core import Version  # noqa: E402

from allmrec_pipeline.datasets import JSONDataset, MatplotlibDataset, TextDataset  # noqa: E402

V1, V2 = "2026-01-01T00.00.00.000Z", "2026-01-02T00.00.00.000Z"


def _figure():
    figure, axes = plt.subplots()
    axes.plot([1, 2], [3, 4])
    return figure


CASES = [
    (JSONDataset, "r.json", {"a": 1}, {"a": 2}),
    (TextDataset, "r.md", "| a |\n", "| b |\n"),
]


@pytest.mark.parametrize(("cls", "name", "first", "second"), CASES)
def test_a_killed_save_leaves_the_previous_version_the_newest(
    tmp_path, monkeypatch, cls, name, first, second
):
    cls(filepath=str(tmp_path / name), version=Version(None, V1)).save(first)
    later = cls(filepath=str(tmp_path / name), version=Version(None, V2))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies between the write and the rename

    monkeypatch.setattr(later._fs._inner, "mv", killed)
    with pytest.raises(KeyboardInterrupt):
        later.save(second)
    monkeypatch.undo()
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == [f"{name}/{V1}/{name}"]
    assert cls(filepath=str(tmp_path / name), version=Version(None, None)).load() == first
    cls(filepath=str(tmp_path / name), version=Version(None, V2)).save(second)  # and the next save works
    assert cls(filepath=str(tmp_path / name), version=Version(None, None)).load() == second


def test_plots_are_written_file_by_file_and_never_half(tmp_path, monkeypatch):
    dataset = MatplotlibDataset(filepath=str(tmp_path / "plots"), version=Version(None, V1))
    dataset.save({"a.png": _figure(), "b.png": _figure()})
    pngs = sorted(p.name for p in (tmp_path / "plots" / V1 / "plots").iterdir())
    assert pngs == ["a.png", "b.png"]
    assert all((tmp_path / "plots" / V1 / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    later = MatplotlibDataset(filepath=str(tmp_path / "plots"), version=Version(None, V2))
    monkeypatch.setattr(later._fs._inner, "mv", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        later.save({"a.png": _figure()})
    assert not any(p.is_file() for p in (tmp_path / "plots" / V2).rglob("*"))  # no partial file left behind
