"""Project settings: hooks, config loader and resolvers."""

from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

from allmrec_pipeline.hooks import PreflightHook, RunTaggingHook

# kedro-mlflow registers its own MlflowHook through its entry point; this hook adds the project's run tags.
HOOKS = (RunTaggingHook(), PreflightHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # conf/local and conf/paper override single keys of conf/base (a deep merge), not whole top-level groups.
    "merge_strategy": {"parameters": "soft", "mlflow": "soft"},
    # ${oc.env:NAME} in any config file (Kedro allows it only in credentials by default): conf/team reads the
    # tracking server's address from MLFLOW_TRACKING_URI
    "custom_resolvers": {"oc.env": oc.env},
}
