"""Helpers shared by the benchmark scripts (run as ``python bench/<name>.py``, so this folder is on sys.path)."""

from __future__ import annotations

import glob
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from allmrec_pipeline.models.checkpoint import Checkpoint

ROOT = Path(__file__).resolve().parents[1]


def latest(pattern: str, root: Path = ROOT) -> str:
    """The newest versioned file matching ``pattern`` under ``root`` (the project), or a clear exit. Only for the
    benches that also run where Kedro is not installed (a GPU machine); the others read through ``run_catalog``."""
    paths = sorted(glob.glob(str(Path(root) / pattern)))
    if not paths:
        raise SystemExit(f"missing {pattern} under {root}: run `make run` (or the pipelines it needs) first")
    return paths[-1]


def read_checkpoint(path: str) -> Checkpoint:
    """A safetensors checkpoint file (a version's file, found with ``latest``), read as the catalog reads it."""
    from allmrec_pipeline.datasets import SafetensorsDataset  # imports Kedro: only when a checkpoint is read

    return SafetensorsDataset(filepath=path).load()


def run_catalog(params: str = "", env: str | None = None):
    """The latest run's catalog through a KedroSession, as the notebook loads it, with ``kedro run --params``-style
    overrides (``a.b=1000,c=null``: nested and typed exactly as the CLI makes them) in the Kedro environment
    ``env`` (``kedro run --env``; the default: ``local``). Returns the catalog and the parsed overrides."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from omegaconf import OmegaConf

    bootstrap_project(ROOT)
    runtime = OmegaConf.to_container(OmegaConf.from_dotlist([p for p in params.split(",") if p]))
    with KedroSession.create(project_path=ROOT, env=env, runtime_params=runtime) as session:
        return session.load_context().catalog, runtime


def title_vector_frame(catalog):
    """The run's title vectors (``item_title_vectors``: what a count gate weighing z(text_cosine) and the
    ``text_cosine`` floor read), encoded now when the run has none for its item index."""
    from kedro.io import DatasetError

    from allmrec_pipeline.llm.inputs import encode_item_titles

    item_index = catalog.load("item_index")
    try:
        frame = catalog.load("item_title_vectors")
    except DatasetError:  # not encoded by this run
        frame = None
    if frame is None or len(frame) != len(item_index):
        frame = encode_item_titles(catalog.load("items"), item_index, catalog.load("params:title_encoder"))
    return frame


def run_key(catalog) -> str:
    """What a scores cache belongs to: a digest of the run's stage-2 model (``stage2_model``: its tensors and
    metadata) and its frozen rows (``eval_candidates``). A rerun of stage 2 or of the split changes it."""
    import hashlib

    import pandas as pd

    checkpoint = catalog.load("stage2_model")
    digest = hashlib.sha256(json.dumps(checkpoint.metadata, sort_keys=True).encode())
    for name in sorted(checkpoint.tensors):
        digest.update(name.encode())
        digest.update(checkpoint.tensors[name].float().numpy().tobytes())
    rows = catalog.load("eval_candidates")
    digest.update(pd.util.hash_pandas_object(rows.astype(str), index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def check_cache(path: Path, cached: Any, current: Callable[[], str]) -> None:
    """Refuse a scores cache written for another run: ``cached`` (the file's arrays) holds ``run_key``, and
    ``current()`` (the run's ``run_key``, computed only then) differs. A cache written before keys were kept
    is used as it is, with a warning."""
    if "run_key" not in cached:
        print(
            f"warning: {path} keeps no run key (written before they were kept): it is not checked against the run",
            file=sys.stderr,
        )
        return
    key = str(cached["run_key"])
    now = current()
    if key != now:
        raise SystemExit(
            f"{path} holds the scores of another run (run key {key}, this run's {now}: stage 2 or the split has "
            "run since): delete it, or pass another cache path"
        )


def emit(record: dict, out: Path | None = None, **dumps: Any) -> str:
    """Print ``record`` as the bench's one JSON line (``json.dumps`` options in ``dumps``), also to ``out`` when
    given; returns the line."""
    line = json.dumps(record, **dumps)
    print(line)
    if out:
        out.write_text(line + "\n")
    return line


def expected_hits(frame, index=("scenario", "row")):
    """Each prediction row's Hit@1 from its ``scores`` (a tie at the top splits the hit, as the evaluation's
    metrics count it; ``target_rank == 1`` would count a tied top as a miss), indexed by ``index``."""
    import numpy as np
    import pandas as pd

    from allmrec_pipeline import metrics

    scores = np.stack(frame["scores"].to_numpy()).astype(np.float64)
    targets = np.array(
        [
            int(np.flatnonzero(np.asarray(c) == t)[0])
            for c, t in zip(frame["candidates"], frame["target_item_idx"], strict=True)
        ]
    )
    hits = metrics.scores_per_row(scores, targets, ("hit_at_1",))["hit_at_1"]
    return pd.Series(
        hits, index=pd.MultiIndex.from_frame(frame[list(index)]) if len(index) > 1 else frame[index[0]]
    )
