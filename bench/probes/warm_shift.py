"""Three looks at Video Games' warm-item miss against Beauty (docs/experiments.md, 2026-12-06, "the validation-to-test
shift on warm items"): the CF model's Hit@1 on each validation twin against the test rows; fixed weightings of the
gate's LLM-free inputs with the same weights for every candidate (no count gate) on validation and test rows; the
training counts of cold targets against cold negatives. Test rows are read for the diagnosis only: nothing is chosen
on them.

    python bench/probes/warm_shift.py beauty <gate_frontier cache dir> <predictions.parquet version dir>
"""
import glob, sys
import numpy as np, pandas as pd
from allmrec_pipeline import metrics
env, cache, pred = sys.argv[1:4]
p = pd.read_parquet(pred)
S = ("overall", "cold_item", "warm_item")
def z(x): return (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-8)
def table(model, sc):
    f = p[(p.model == model) & (p.scenario == sc)].sort_values("row")
    return np.stack(f.scores.map(np.asarray)).astype(float), np.stack(f.candidates.map(np.asarray)), f.target_item_idx.to_numpy()
def iv(a, b):
    r = metrics.paired_bootstrap(a, b, seed=42); return f"{a.mean():.3f} ({r['difference']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}])"
W = {"cf": (1, 0, 0, 0), "cf + .25 overlap": (1, 0, .25, 0), "cf + .25 matcher": (1, 0, 0, .25), "cf + .25 overlap + .25 matcher": (1, 0, .25, .25)}
print(f"env {env}; Hit@1, paired 95% bootstrap against cf (seed 42)")
print("1. cf on the validation twins (the cache's rows) and the test rows")
val, test = {}, {}
for sc in S:
    d = np.load(f"{cache}/{sc}.npz"); val[sc] = (d["inputs"].astype(float), d["targets"], d["cold"])
    cf, C, tgt = table("cf", sc); ov, C2, _ = table("text_overlap", sc); mt, C3, _ = table("text_matcher", sc); al, C4, _ = table("a_llmrec", sc)
    assert (C == C2).all() and (C == C3).all() and (C == C4).all()
    t = (C == tgt[:, None]).argmax(1)
    test[sc] = (np.stack([z(cf), np.zeros_like(cf), z(ov), z(mt)], -1), t, al, C)
    hv = (val[sc][0][..., 0].argmax(1) == val[sc][1]).mean(); ht = (cf.argmax(1) == t).mean()
    print(f"   {sc:9s} validation n={len(val[sc][1])} cf {hv:.3f} | test n={len(t)} cf {ht:.3f}")
print("2. one weighting for every candidate (no count gate), the LLM's head left out")
for sc in S:
    for name, rows in (("validation", val[sc]), ("test", test[sc])):
        X, t = rows[0], rows[1]; hit = lambda s: (s.argmax(1) == t).astype(float); base = hit(X[..., 0])
        line = " | ".join(f"{k} {iv(hit(sum(w[i] * X[..., i] for i in range(4))), base)}" for k, w in W.items() if k != "cf")
        if name == "test": line += f" | a_llmrec {iv(hit(test[sc][2]), base)}"
        print(f"   {sc:9s} {name:10s} {line}")
print("3. training counts of the cold candidates (at most 5) in the cold_item validation and test rows")
pop = pd.read_parquet(sorted(glob.glob(f"data/05_model_input/{env}/item_popularity.parquet/*/*.parquet"))[-1])
counts = np.zeros(int(pop.item_idx.max()) + 1); counts[pop.item_idx] = pop["count"]
ec = pd.read_parquet(sorted(glob.glob(f"data/05_model_input/{env}/eval_candidates.parquet/*/*.parquet"))[-1])
rows = ec[(ec.scenario == "cold_item") & (ec.split == "valid")].reset_index(drop=True)
for name, C, t in (("validation", np.stack(rows.candidates.to_numpy()), val["cold_item"][1]), ("test", test["cold_item"][3], test["cold_item"][1])):
    cc = counts[C]; is_t = np.zeros(C.shape, bool); is_t[np.arange(len(t)), t] = True; cold = cc <= 5
    print(f"   {name:10s} cold targets n={int((cold & is_t).sum())} mean count {cc[cold & is_t].mean():.2f} | cold negatives n={int((cold & ~is_t).sum())} mean count {cc[cold & ~is_t].mean():.2f}")
