"""Probe: titles read by the LLM *alone* (no prompt context), cached once per item; a head trained on many users.
Same eval sets as bench/probes/stage2_features_v2.py (reconstructed with its seeds, checked against feats2.pt)."""
import sys, time, numpy as np, torch, pandas as pd
sys.path.insert(0, "bench")
from _common import run_catalog
from allmrec_pipeline import text_floors, metrics
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.pipelines.split_sequences.splitting import rng_for
from allmrec_pipeline.pipelines.stage2.nodes import item_titles, load_llm, user_vectors, cf_logits
from allmrec_pipeline.llm.layers import first_layers
catalog, _ = run_catalog("")
llms, llm = catalog.load("params:llms"), catalog.load("params:llm")
cands = catalog.load("eval_candidates"); item_index = catalog.load("item_index")
seqs = catalog.load("sequences"); train = catalog.load("train_sequences")
pop = catalog.load("item_popularity")
backbone = load_backbone(catalog.load("cf_model"), expected_n_items=len(item_index)).requires_grad_(False)
titles = item_titles(catalog.load("items"), item_index)
_, model, tok = load_llm(llms, llm)
n_items = len(item_index)
LAYER = int(sys.argv[1]) if len(sys.argv) > 1 else 12
PREFIX = sys.argv[2] if len(sys.argv) > 2 else "Item: "
# per-item features: each title alone after a fixed prefix, mean over its (<=10) tokens at LAYER
pre = tok(PREFIX, add_special_tokens=False)["input_ids"] if PREFIX else []
tids = [tok(t, add_special_tokens=False)["input_ids"][:10] for t in titles]
t0 = time.perf_counter()
feats = torch.zeros(len(titles), model.config.hidden_size)
order = np.argsort([len(t) for t in tids])
with torch.no_grad(), first_layers(model, LAYER):
    for s in range(0, len(titles), 64):
        idx = order[s:s + 64]
        seqs_ = [pre + tids[i] for i in idx]
        L = max(len(x) for x in seqs_)
        ids = torch.full((len(idx), L), tok.eos_token_id or 0); mask = torch.zeros(len(idx), L, dtype=torch.long)
        for r, x in enumerate(seqs_):
            ids[r, :len(x)] = torch.tensor(x); mask[r, :len(x)] = 1
        h = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        for r, i in enumerate(idx):
            n = len(tids[i])
            feats[i] = h[r, len(pre):len(pre) + n].mean(0) if n else 0
print(f"item features {n_items} in {time.perf_counter()-t0:.0f}s", flush=True)
# sets (as stage2_features_v2.py)
valid_users = set(cands.loc[cands.split == "valid", "user_idx"])
full = seqs.set_index("user_idx")["items"]
rng = rng_for(7, "probe/users")
pool = train[(train["items"].map(len) >= 2) & ~train.user_idx.isin(valid_users)].reset_index(drop=True)
perm = rng.permutation(len(pool))
NTRAIN = 1500
group = pop.set_index("item_idx")["group"]
def make(kind, users, want=None, limit=None, tag=None):
    r = rng_for(7, f"probe/neg/{tag or kind}")
    out = []
    for u, items in zip(users.user_idx, users["items"]):
        items = list(map(int, items)); f = list(map(int, full[u]))
        if len(f) <= len(items): continue
        hist, tgt = items, f[len(items)]
        if want is not None and group.get(tgt) != want: continue
        if limit is not None and len(out) >= limit: break
        seen = set(f); negs = []
        while len(negs) < 19:
            i = int(r.integers(1, n_items + 1))
            if i not in seen and i not in negs: negs.append(i)
        c = [tgt, *negs]; o = r.permutation(20); c = [c[i] for i in o]
        out.append((hist, c, int(np.flatnonzero(o == 0)[0])))
    return pd.DataFrame({"history": [h for h, _, _ in out], "candidates": [c for _, c, _ in out], "target_item_idx": [c[p] for _, c, p in out]})
users = pool.iloc[np.sort(perm[:NTRAIN])].reset_index(drop=True)
dev = pool.iloc[np.sort(perm[NTRAIN:])].reset_index(drop=True)
sets = {}
rows = cands[(cands.scenario == "overall") & (cands.split == "valid")].reset_index(drop=True)
sets["overall"] = rows.iloc[np.sort(rng_for(42, "probe/overall").choice(len(rows), 500, replace=False))].reset_index(drop=True)
sets["cold_item"] = make("valid", dev, "cold", 500)
sets["warm_item"] = make("valid", dev, "warm", 300)
sets["train_valid"] = make("valid", users)
# extra training users: the dev pool not used by cold/warm sets (after those rows), all of them
used = set()
for nm in ("cold_item", "warm_item"):
    pass
extra = make("valid", dev.iloc[4000:], tag="extra")
old = torch.load("bench/results/probes/feats2.pt")
for nm in ("overall", "cold_item", "warm_item", "train_valid"):
    ci = torch.as_tensor(np.stack([np.asarray(c) for c in sets[nm]["candidates"]]))
    print(nm, len(sets[nm]), "matches feats2:", bool((ci == old[nm]["cand_idx"]).all()) if ci.shape == old[nm]["cand_idx"].shape else ci.shape)
print("extra training samples", len(extra), flush=True)
words = [text_floors.title_words(t) for t in titles]
def pack(rows):
    hist = [list(map(int, h)) for h in rows["history"]]
    cand = np.stack([np.asarray(c, dtype=np.int64) for c in rows["candidates"]])
    tgt = torch.tensor([int(np.flatnonzero(c == t)[0]) for c, t in zip(cand, rows["target_item_idx"])])
    uv = user_vectors(backbone, hist)
    cf = torch.from_numpy(cf_logits(backbone, uv, list(cand)))
    H = torch.zeros(len(hist), 10, dtype=torch.long)
    for r, h in enumerate(hist):
        h = h[-10:]; H[r, :len(h)] = torch.tensor(h)
    return {"hist": H, "cand": torch.from_numpy(cand), "target": tgt, "cf": cf,
            "overlap": torch.from_numpy(text_floors.overlap_scores(hist, cand, words, 10))}
data = {k: pack(v) for k, v in sets.items()}
data["extra"] = pack(extra)
torch.save({"feats": feats, "data": data, "layer": LAYER, "prefix": PREFIX}, f"bench/results/probes/alone_L{LAYER}.pt")
print("saved", flush=True)
