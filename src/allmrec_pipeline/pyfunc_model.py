"""The MLflow pyfunc of the trained recommender, logged as code (MLflow's "models from code": no pickled
object). Its one artifact is a serving bundle (``serving.py``); ``predict`` takes a frame of requests, one user
per row (``history``, optional ``k`` and ``candidates``), and returns one answer per row."""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from allmrec_pipeline.serving import RequestError, ServingRecommender


class AllmrecModel(PythonModel):
    """Loads the bundle once; answers a batch of users per call."""

    def load_context(self, context) -> None:
        self.recommender = ServingRecommender.from_bundle(context.artifacts["bundle"])

    # ``model_input`` is annotated as MLflow hands it over (a frame, the logged signature's columns): MLflow
    # neither infers a schema nor wraps a validator from that hint, and warns about none; called directly, the
    # model also takes one request (a dict) or a list of them
    def predict(
        self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        if isinstance(model_input, pd.DataFrame):
            requests = [
                {key: value for key, value in row.items() if key in ("history", "k", "candidates")}
                for row in model_input.to_dict("records")
            ]
        elif isinstance(model_input, dict):
            requests = [model_input]
        else:
            requests = list(model_input)
        try:
            return [answer.to_dict() for answer in self.recommender.recommend(requests)]
        except RequestError as error:
            raise mlflow.exceptions.MlflowException.invalid_parameter_value(str(error)) from None


mlflow.models.set_model(AllmrecModel())
