"""The served model's class: MLflow takes its ``predict`` as it is, without a warning at import or logging."""

import importlib
import sys
import warnings

import mlflow.pyfunc  # noqa: F401  (MLflow's own import-time warnings are not the project's)


def test_the_pyfunc_class_raises_no_mlflow_type_hint_warning():
    sys.modules.pop("allmrec_pipeline.pyfunc_model", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the import
        module = importlib.import_module("allmrec_pipeline.pyfunc_model")
        hints = module.AllmrecModel().predict_type_hints  # what log_model reads for signature inference
    assert hints.input.__name__ == "DataFrame"
