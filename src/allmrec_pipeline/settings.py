"""Project settings: hooks, config loader and resolvers."""

import os
import warnings

from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

from allmrec_pipeline.hooks import DataParallelHook, PreflightHook, RunTaggingHook

# kedro-mlflow registers its own MlflowHook through its entry point; RunTaggingHook adds the project's run tags.
# Under torchrun only rank 0 tracks and writes: the other ranks run without the plugins' hooks (MLflow, kedro-viz's
# run statistics, telemetry) and without RunTaggingHook, and DataParallelHook keeps their outputs in memory.
# torchrun's RANK read here, not through distributed.launched(): that module imports torch, which every kedro
# command would then pay for at start-up (DataParallelHook checks the variables when a run starts)
if os.environ.get("RANK", "0") == "0":
    HOOKS = (RunTaggingHook(), PreflightHook(), DataParallelHook())
else:
    HOOKS = (PreflightHook(), DataParallelHook())
    # distribution names as their metadata spells them (kedro compares them exactly)
    DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow", "kedro-mlflow", "kedro-viz", "kedro-telemetry")

# Kedro's and kedro-mlflow's own calls of OmegaConf.register_new_resolver warn at every run that it is deprecated:
# nothing a user of this project can act on, so it is not shown
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning)

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
