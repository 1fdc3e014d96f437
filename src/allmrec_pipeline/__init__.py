"""allmrec-pipeline: A-LLMRec (Kim et al., KDD 2024) as a tracked Kedro project."""

__version__ = "0.1.0"
