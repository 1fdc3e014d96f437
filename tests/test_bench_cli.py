"""Every bench answers --help without a run's outputs (a smoke test of its imports and options)."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

# recbole_sasrec.py runs inside RecBole's own environment (cf_vs_recbole.py starts it there)
BENCHES = sorted(
    p.name for p in (PROJECT_ROOT / "bench").glob("*.py") if p.name not in ("_common.py", "recbole_sasrec.py")
)


def test_every_bench_is_listed():
    assert {"stage2_variants.py", "evaluate.py", "stage1.py", "serve.py"} <= set(BENCHES)


@pytest.mark.parametrize("script", BENCHES)
def test_bench_help(script):
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout


def _run_without_kedro(tmp_path, script: str, args: list[str]) -> subprocess.CompletedProcess:
    """``bench/<script> args`` in a Python where Kedro and MLflow cannot be imported, as on a GPU machine."""
    blocked = tmp_path / "blocked"
    for package in ("kedro", "mlflow"):
        (blocked / package).mkdir(parents=True, exist_ok=True)
        (blocked / package / "__init__.py").write_text(
            f"raise ImportError('{package} is not on this machine')\n"
        )
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={
            "PYTHONPATH": f"{blocked}:{PROJECT_ROOT / 'src'}",
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
        },
    )


def _tiny_llm_and_titles(root):
    """A tiny Llama's config and tokenizer under ``root/llm`` (returned) and 20 titles as the Beauty
    ``item_index`` and ``items`` parquet versions under ``root/data``, as the GPU scripts' ``--root`` holds them."""
    import pandas as pd

    from tests.llm.tiny import WORDS, tiny_llm, tiny_tokenizer

    llm = root / "llm"
    tiny_llm("llama").config.save_pretrained(llm)
    tiny_tokenizer().save_pretrained(llm)
    titles = [" ".join(WORDS[i : i + 3]) for i in range(0, 60, 3)]
    for path, frame in (
        ("data/03_primary/beauty/item_index.parquet/v1", pd.DataFrame({"item_id": range(20), "item_idx": range(1, 21)})),
        ("data/02_intermediate/beauty/items.parquet/v1", pd.DataFrame({"item_id": range(20), "title": titles})),
    ):  # fmt: skip
        (root / path).mkdir(parents=True)
        frame.to_parquet(root / path / "part.parquet")
    return llm


def test_the_gpu_stage2_bench_runs_without_kedro_mlflow_or_the_embedded_weights(tmp_path):
    """bench/gpu_check.sh's path on the CPU: a machine with neither Kedro nor MLflow, an LLM of a given shape with
    random weights (``--llm-config``), the titles from a ``--root`` folder of parquet files."""
    import json

    from tests.llm.tiny import tiny_llm

    llm = _tiny_llm_and_titles(tmp_path)
    out = tmp_path / "stage2.json"
    args = ["--root", str(tmp_path), "--llm-config", str(llm), "--batch-sizes", "2,3", "--steps", "1"]
    args += ["--dtypes", "float32", "--head-layer", "1", "--threads", "1", "--head-reads", "title_tokens"]
    result = _run_without_kedro(tmp_path, "stage2.py", [*args, "--out", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["random_weights"] and figures["head_reads"] == "title_tokens"
    sizes = figures["float32"]["by_batch_size"]
    assert [s["batch_size"] for s in sizes] == [2, 3]
    layer = sum(p.numel() for p in tiny_llm("llama").model.layers[0].parameters())
    for size in sizes:
        assert size["samples_per_s"] > 0 and size["scoring_rows_per_s"] > 0 and 0 < size["mfu"] < 1
        # one of the tiny LLM's two layers: 6 × its parameters × the real (unpadded) tokens per prompt
        tokens = size["model_flop_per_sample"] / (6 * layer)
        assert 20 < tokens <= size["prompt_tokens"]


@pytest.mark.parametrize("script", ["gpu_check.sh", "gpu_cost.sh"])
def test_the_gpu_scripts_name_what_is_missing(tmp_path, script):
    result = subprocess.run(
        ["bash", str(PROJECT_ROOT / "bench" / script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert ".gpu/llm/config.json is missing" in result.stderr


def test_the_stage2_bench_times_a_variant_with_lora(tmp_path):
    """bench/gpu_cost.sh's TALLRec step on the CPU: ``--variant tallrec`` applies that variant's model keys
    (titles-only prompts, LoRA on the tiny LLM), trains only the adapters and scores in rank mode."""
    import json

    from tests.llm.tiny import tiny_llm

    llm = _tiny_llm_and_titles(tmp_path)
    out = tmp_path / "tallrec.json"
    args = ["--root", str(tmp_path), "--llm-config", str(llm), "--batch-sizes", "2", "--steps", "1"]
    args += ["--dtypes", "float32", "--threads", "1", "--variant", "tallrec", "--out", str(out)]
    result = _run_without_kedro(tmp_path, "stage2.py", args)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["variant"] == "tallrec" and figures["objective"] == "listwise"
    step = figures["float32"]
    hidden = tiny_llm("llama").config.hidden_size
    # rank 8 on q_proj and v_proj of both tiny layers: A (8 × in) and B (out × 8) each
    q, v = (
        tiny_llm("llama").model.layers[0].self_attn.q_proj,
        tiny_llm("llama").model.layers[0].self_attn.v_proj,
    )
    per_layer = sum(8 * (m.in_features + m.out_features) for m in (q, v))
    assert step["trainable_parameters"] == 2 * per_layer and hidden == q.in_features
    assert step["samples_per_s"] > 0 and step["scoring_rows_per_s"] > 0


def _bench_json(script: str, out: Path, *options: str) -> dict:
    """``bench/<script>`` with ``--out out`` and ``options``: its JSON line, after checking that it exited cleanly."""
    import json

    command = [sys.executable, str(PROJECT_ROOT / "bench" / script), "--out", str(out), *options]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def _gate_rules(cache: Path, *options: str) -> dict:
    """bench/gate_rules.py on a planted ``--cache`` file."""
    return _bench_json("gate_rules.py", cache.with_name("rules.json"), "--cache", str(cache), *options)


def test_gate_rules_choose_on_the_first_rows_and_score_the_rest(tmp_path):
    """bench/gate_rules.py from its ``--cache`` (no run, no LLM): each rule's point is chosen on the gate's rows
    and scored on the others; a planted signal (the head ranks every target first, the CF logits are noise)
    makes every rule pick a point that weighs the head, where the CF weighting is at chance."""

    import numpy as np

    rng = np.random.default_rng(0)
    n, c = 40, 5
    targets = rng.integers(0, c, n)
    inputs = rng.normal(size=(n, c, 3)).astype(np.float32)
    inputs[np.arange(n), targets, 1] = 5.0  # z(head): the target first
    cold = rng.random((n, c)) < 0.3
    groups = np.array(["cold", "warm", "other", "warm"] * 10)
    cache = tmp_path / "scores.npz"
    np.savez(
        cache, inputs=inputs, cold=cold, targets=targets, groups=groups,
        gate=np.ones((2, 3), dtype=np.float32), n_choose=10, overlap=True,
        counts=rng.integers(0, 50, (n, c)).astype(np.float32),
    )  # fmt: skip
    figures = _gate_rules(cache, "--fit-l2", "0.01")
    assert figures["choose_rows"] == 10 and figures["scored_rows"] == 30
    assert figures["floors"]["all"]["cf"] < 0.5
    rules = {"current", "balanced", "balanced_unguarded", "warm_guarded", "all"}
    assert set(figures["rules"]) == {
        "shipped",
        "cf_for_warm",
        "fitted_l2_0.01",
        "fitted_balanced_l2_0.01",
        *rules,
    }
    # the learned fusion, fitted on the 10 choice rows, finds the head too
    assert figures["rules"]["fitted_l2_0.01"]["all"]["hit_at_1"] > 0.9
    for name, rule in figures["rules"].items():
        assert rule["all"]["n"] == 30 and rule["warm_item"]["n"] == sum(groups[10:] == "warm")
        if name in rules:  # every rule free to weigh the head does so for both groups of candidates
            assert rule["gate"][0][1] > 0 and rule["gate"][1][1] > 0, name
            assert rule["all"]["hit_at_1"] > 0.9 and rule["all"]["minus_cf"][1] > 0, name
    cf_for_warm = figures["rules"]["cf_for_warm"]["gate"]
    assert cf_for_warm[0] == [1.0, 0.0, 0.0] and cf_for_warm[1][1] > 0  # the head for cold candidates only
    assert figures["rules"]["shipped"]["gate"] == [[1.0, 1.0, 1.0]] * 2


def test_gate_rules_row_features_tell_the_kind_of_row_apart(tmp_path):
    """``--row-features``: a planted run whose rows say their target's kind only through the user's taste. Every row
    has a warm candidate leading on CF and a cold one leading on the overlap; with low taste the cold one is the
    target, with high taste the warm one. The fusion that reads the row finds both kinds; the count-only fusion
    cannot tell them apart."""

    import numpy as np

    rng = np.random.default_rng(1)
    n, c = 300, 5
    cold = np.zeros((n, c), dtype=bool)
    cold[:, :2] = True  # candidates 0 and 1 are cold
    taste = rng.normal(size=n)
    cold_row = taste < 0
    targets = np.where(cold_row, 0, 2)
    inputs = rng.normal(scale=0.3, size=(n, c, 3)).astype(np.float32)
    inputs[:, 2:, 0] += 1.0  # warm candidates score higher on CF
    inputs[:, 2, 0] += 2.0  # candidate 2 leads on CF: the target in a warm row, a decoy in a cold one
    inputs[cold_row, 0, 2] += 3.0  # a cold target leads on the overlap
    inputs[~cold_row, 1, 2] += 3.0  # ... and so does a cold decoy beside a warm target
    groups = np.where(cold_row, "cold", "warm")
    cache = tmp_path / "scores.npz"
    np.savez(
        cache, inputs=inputs, cold=cold, targets=targets, groups=groups,
        gate=np.ones((2, 3), dtype=np.float32), n_choose=150, overlap=True,
        counts=np.where(cold, 2.0, 40.0).astype(np.float32), taste=taste,
    )  # fmt: skip
    rules = _gate_rules(cache, "--fit-l2", "0.001", "--row-features")["rules"]
    assert rules["fitted_rows_l2_0.001"]["all"]["hit_at_1"] > 0.95
    for view in ("cold_item", "warm_item"):
        assert rules["fitted_rows_l2_0.001"][view]["hit_at_1"] > 0.9, view
    assert rules["fitted_l2_0.001"]["all"]["hit_at_1"] < 0.8  # the count alone cannot read the row


def _planted_frontier(folder: Path, knows_cold: str | None) -> None:
    """Planted caches of bench/gate_frontier.py's three scenarios (200 rows each, 5 candidates, 0 and 1 cold): in a
    warm row the target (candidate 2) leads on CF; in a cold row a warm decoy (2) leads on CF and the target (0)
    leads on the input ``knows_cold`` names (``overlap`` or ``cosine``; ``None``: nothing finds it). Users 0-199
    in every scenario, shuffled."""
    import numpy as np

    rng = np.random.default_rng(2)
    folder.mkdir()
    n, c = 200, 5
    cold = np.zeros((n, c), dtype=bool)
    cold[:, :2] = True
    for scenario, cold_share in (("overall", 0.2), ("cold_item", 1.0), ("warm_item", 0.0)):
        cold_row = rng.random(n) < cold_share
        inputs = rng.normal(scale=0.3, size=(n, c, 3)).astype(np.float32)
        inputs[:, 2:, 0] += 1.0
        inputs[:, 2, 0] += 2.0
        cosine = rng.normal(scale=0.3, size=(n, c)).astype(np.float32)
        if knows_cold == "overlap":
            inputs[cold_row, 0, 2] += 3.0
        if knows_cold == "cosine":
            cosine[cold_row, 0] += 3.0
        np.savez(
            folder / f"{scenario}.npz", inputs=inputs, cold=cold, targets=np.where(cold_row, 0, 2),
            users=rng.permutation(n), gate=np.array([[1, 0, 0], [1, 0, 0]], dtype=np.float32),
            n_choose=np.int64(50), overlap=np.bool_(True), cosine=cosine,
        )  # fmt: skip


def _gate_frontier(cache: Path, *options: str) -> dict:
    """bench/gate_frontier.py on planted ``--cache-dir`` files."""
    return _bench_json(
        "gate_frontier.py", cache.with_name("frontier.json"), "--cache-dir", str(cache), *options
    )


@pytest.mark.parametrize("knows_cold", ["overlap", None])
def test_gate_frontier_finds_a_point_meeting_every_bound_only_where_one_exists(tmp_path, knows_cold):
    """bench/gate_frontier.py from planted caches: where the overlap finds cold targets, a point that weighs it
    for cold candidates only meets every bound (cold rows right, warm rows kept); where nothing does, no point
    does (nothing lifts cold targets 0.15 over CF). Twin rows of the choice rows' users are not held out."""
    import numpy as np

    _planted_frontier(tmp_path / "cache", knows_cold)
    figures = _gate_frontier(tmp_path / "cache")
    users = {s: np.load(tmp_path / "cache" / f"{s}.npz")["users"] for s in ("overall", "cold_item")}
    assert figures["points"] == 720 and figures["held_out_rows"]["overall"] == 150
    held_out_cold = np.sum(~np.isin(users["cold_item"][50:], users["overall"][:50]))
    assert figures["held_out_rows"]["cold_item"] == held_out_cold < 150
    assert figures["shipped"]["point"] == 0 and not figures["shipped"]["meets_every_bound"]  # CF alone: no
    meeting = figures["meeting_every_bound"]
    if knows_cold:
        assert meeting and figures["closest"]["meets_every_bound"]
        gate = figures["closest"]["gate"]
        assert (
            gate[1][2] > gate[1][0] and gate[0][2] < gate[0][0]
        )  # the overlap for cold candidates, CF for the rest
        assert figures["closest"]["hit_at_1"]["cold_item"] > 0.95
    else:
        assert meeting == [] and figures["meeting_each_bound"]["cold_item - cf: >= +0.15"] == 0


def test_gate_frontier_cosine_adds_a_fourth_input(tmp_path):
    """``--cosine``: where only z(text_cosine) finds cold targets, the gate's own grid has no point meeting every
    bound and the crossed grid has one, which weighs the cosine for cold candidates."""
    _planted_frontier(tmp_path / "cache", "cosine")
    assert _gate_frontier(tmp_path / "cache")["meeting_every_bound"] == []
    figures = _gate_frontier(tmp_path / "cache", "--cosine")
    assert (
        figures["inputs"] == ["cf", "head", "text_overlap", "text_cosine"] and figures["points"] == 720 * 12
    )
    assert figures["meeting_every_bound"] and figures["shipped"]["gate"][1] == [1.0, 0.0, 0.0, 0.0]
    assert figures["closest"]["gate"][1][3] > 0


def test_the_cf_device_bench_runs_without_kedro_or_mlflow(tmp_path):
    """bench/cf_device.py's path on a GPU machine, here on the CPU: the pipeline's CF loop on ``--device``."""
    import json

    import pandas as pd

    sequences = [[(start + k) % 40 + 1 for k in range(8)] for start in range(60)]
    rows = [
        {
            "scenario": "overall",
            "split": "valid",
            "history": seq[:-1],
            "candidates": [seq[-1], seq[-1] % 40 + 1, (seq[-1] + 5) % 40 + 1],
            "target_item_idx": seq[-1],
        }
        for seq in sequences[:20]
    ]
    for path, frame in (
        (
            "data/05_model_input/beauty/train_sequences.parquet/v1",
            pd.DataFrame({"user_idx": range(60), "items": sequences}),
        ),
        ("data/05_model_input/beauty/eval_candidates.parquet/v1", pd.DataFrame(rows)),
        (
            "data/03_primary/beauty/item_index.parquet/v1",
            pd.DataFrame({"item_id": range(40), "item_idx": range(1, 41)}),
        ),
    ):
        (tmp_path / path).mkdir(parents=True)
        frame.to_parquet(tmp_path / path / "part.parquet")
    out = tmp_path / "cf.json"
    args = [
        "--root",
        str(tmp_path),
        "--device",
        "cpu",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--threads",
        "1",
    ]
    result = _run_without_kedro(tmp_path, "cf_device.py", [*args, "--out", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["device"] == "cpu" and figures["users"] == 60 and figures["valid_rows"] == 20
    assert figures["epochs"] == 2 and len(figures["seconds_per_epoch"]) == 2
    assert 0 <= figures["best_valid_hit_at_1"] <= 1 and figures["best_epoch"] in (1, 2)


def test_a_scores_cache_of_another_run_is_refused_and_an_unkeyed_one_used_with_a_warning(
    tmp_path, monkeypatch, capsys
):
    """The gate benches' caches keep the run key they were scored for (``_common.run_key``); a cache whose key is
    not the run's stops the bench naming the file, and the key of the run is computed only when a cache has one."""
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "bench"))
    from _common import check_cache

    calls = []

    def current():
        calls.append(1)
        return "abc"

    check_cache(tmp_path / "same.npz", {"run_key": "abc"}, current)
    with pytest.raises(SystemExit, match=r"stale\.npz holds the scores of another run \(run key old"):
        check_cache(tmp_path / "stale.npz", {"run_key": "old"}, current)
    assert len(calls) == 2
    check_cache(tmp_path / "unkeyed.npz", {}, current)
    assert len(calls) == 2
    assert "unkeyed.npz keeps no run key" in capsys.readouterr().err
