"""The LLM adapter: loading (HF id, local directory or GGUF file), prompt assembly with soft tokens, scoring
and generation. Plain PyTorch and transformers; nothing here imports Kedro or MLflow."""
