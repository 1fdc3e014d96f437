"""The run's preflight names an LLM it cannot load offline instead of failing inside a library."""

from allmrec_pipeline.hooks import _llm_problem

LLMS = {"smollm2": {"model": "embedded:smollm2"}}


def test_a_missing_directory_is_named_not_a_library_error():
    problem = _llm_problem({"local": {"model": "/nonexistent/dir"}}, "local")
    assert (
        problem
        == "llms.local.model: '/nonexistent/dir' is not an existing directory (nor a Hugging Face model id)"
    )


def test_an_uncached_hub_id_says_how_to_fetch_it():
    problem = _llm_problem({"hub": {"model": "someone/not-cached-model"}}, "hub")
    assert "nothing is downloaded at run time" in problem and "huggingface-cli download" in problem


def test_an_unknown_key_and_the_embedded_model():
    assert "not a key of 'llms'" in _llm_problem(LLMS, "other")
    assert _llm_problem(LLMS, "smollm2") is None


def test_a_missing_gguf_file_inside_an_existing_directory_is_named(tmp_path):
    problem = _llm_problem({"local": {"model": str(tmp_path), "gguf_file": "model.Q8.gguf"}}, "local")
    assert problem == f"llms.local.gguf_file: 'model.Q8.gguf' is not a file inside {str(tmp_path)!r}"
    (tmp_path / "model.Q8.gguf").write_bytes(b"GGUF")
    assert _llm_problem({"local": {"model": str(tmp_path), "gguf_file": "model.Q8.gguf"}}, "local") is None
