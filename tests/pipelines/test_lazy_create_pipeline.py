"""Pipeline packages import their nodes without Kedro; ``create_pipeline`` arrives on first use."""

import subprocess
import sys

import pytest
from kedro.pipeline import Pipeline

from allmrec_pipeline.pipelines import stage1


def test_node_modules_import_where_kedro_is_absent():
    code = (
        "import sys\n"
        "sys.modules['kedro'] = sys.modules['kedro.pipeline'] = None  # as on a bare GPU machine\n"
        "import allmrec_pipeline.pipelines.stage2.nodes, allmrec_pipeline.pipelines.pretrain_cf.nodes\n"
        "import allmrec_pipeline.pipelines.stage2 as stage2\n"
        "try:\n"
        "    stage2.create_pipeline\n"
        "except ImportError:\n"
        "    print('kedro needed only here')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "kedro needed only here"


def test_create_pipeline_on_first_use_and_unknown_names_refused():
    assert isinstance(stage1.create_pipeline(), Pipeline)
    with pytest.raises(AttributeError, match="allmrec_pipeline.pipelines.stage1.*no_such_thing"):
        stage1.no_such_thing  # noqa: B018
