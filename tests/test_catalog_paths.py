"""No two shipped environments write one dataset into the same file: a run on one source dataset must never add a
version to another's tables (Beauty's cross-domain copy of Video Games once did, so that the next Video Games
bench read Beauty's cross-domain rows as its own)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from allmrec_pipeline.settings import CONFIG_LOADER_ARGS

CONF = Path(__file__).resolve().parents[1] / "conf"
# the environments that choose a source dataset of their own (conf/local is empty in a clone: the default run)
SOURCE_ENVS = ("local", "video_games", "movielens", "paper")


def _paths(env: str) -> dict[str, str]:
    """Every catalog entry's resolved file path in ``env`` (entries without one, and factory patterns, left out)."""
    loader = OmegaConfigLoader(conf_source=str(CONF), env=env, **CONFIG_LOADER_ARGS)
    catalog = OmegaConf.to_container(OmegaConf.create(loader["catalog"]), resolve=True)
    paths = {}
    for name, entry in catalog.items():
        if not isinstance(entry, dict) or "{" in name or name.startswith("_"):
            continue
        for key in ("filepath", "path"):
            if isinstance(entry.get(key), str):
                paths[f"{env}:{name}"] = entry[key]
    return paths


@pytest.mark.parametrize("env", SOURCE_ENVS)
def test_cross_domain_tables_lie_under_their_source_dataset(env):
    loader = OmegaConfigLoader(conf_source=str(CONF), env=env, **CONFIG_LOADER_ARGS)
    source = loader["globals"]["dataset"]
    crossing = {k: p for k, p in _paths(env).items() if k.split(":", 1)[1].startswith("cross_domain")}
    assert crossing
    for key, path in crossing.items():
        assert f"/{source}/cross_domain/" in path, (
            f"{key} writes {path}, outside the source dataset's folders"
        )


def test_no_two_environments_write_one_file_for_different_entries():
    owners: dict[str, set[str]] = {}
    for env in SOURCE_ENVS:
        for key, path in _paths(env).items():
            owners.setdefault(path, set()).add(key.split(":", 1)[1])
    # one entry name in several environments at one path is the same table (e.g. conf/paper's own dataset);
    # two different entries at one path are a collision
    shared = {path: names for path, names in owners.items() if len(names) > 1}
    assert not shared, f"catalog entries share a file across environments: {shared}"
