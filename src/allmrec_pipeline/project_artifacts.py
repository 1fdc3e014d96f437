"""An MLflow artifact store that lives beside the tracking database: ``project:<relative path>``.

MLflow fixes an experiment's artifact location when the experiment is created and turns any local path into an
absolute one, so a copied or moved project would keep writing to (and the UI reading from) the original folder.
An artifact location ``project:mlruns`` is stored as written, and every process that opens it (a Kedro run, ``mlflow
ui`` / ``mlflow server``, ``mlflow models serve``) resolves it against the folder of the sqlite tracking database it
uses: the project root by default (``sqlite:///mlflow.db``). Registered for the ``project`` scheme through the
``mlflow.artifact_repository`` entry point (pyproject.toml); the files themselves are plain local files.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
from sqlalchemy.engine import make_url

SCHEME = "project"


def store_folder(tracking_uri: str | None = None) -> Path:
    """The folder of the local sqlite database that tracks these runs: from ``tracking_uri``, else the process's
    tracking URI (``mlflow server`` / ``mlflow ui`` set theirs to their --backend-store-uri); the working directory
    when neither is a local sqlite file."""
    for uri in (tracking_uri, mlflow.get_tracking_uri()):
        if uri and uri.startswith("sqlite:///"):
            return Path(make_url(uri).database).resolve().parent
    return Path.cwd()


def local_location(artifact_uri: str, tracking_uri: str | None = None) -> Path:
    """The local folder a ``project:<relative path>`` URI names for the database at ``tracking_uri``."""
    scheme, _, relative = artifact_uri.partition(":")
    if scheme != SCHEME or not relative or Path(relative).is_absolute() or relative.startswith("//"):
        raise MlflowException(
            f"artifact location {artifact_uri!r}: a '{SCHEME}:' location is a path relative to the tracking "
            f"database's folder, e.g. '{SCHEME}:mlruns'"
        )
    return store_folder(tracking_uri) / relative


class ProjectArtifactRepository(LocalArtifactRepository):
    """Local files under the tracking database's folder, addressed by ``project:<relative path>``."""

    def __init__(
        self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
    ) -> None:
        super().__init__(local_location(artifact_uri, tracking_uri).as_uri(), tracking_uri, registry_uri)
