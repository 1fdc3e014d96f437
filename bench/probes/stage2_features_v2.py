"""Feature probe: frozen LLM head features for stage-2 training samples (train-last vs valid-position) and
validation rows of four scenarios; cached to bench/results/probes/feats.pt."""
import sys, time, numpy as np, torch, pandas as pd
sys.path.insert(0, "bench")
from _common import run_catalog
from allmrec_pipeline import text_floors
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.pipelines.split_sequences.splitting import rng_for
from allmrec_pipeline.pipelines.stage2.nodes import build_recommender, embedding_table, item_titles, load_llm, row_samples, user_vectors, wording_for, cf_logits, item_table
from allmrec_pipeline.llm.recommender import Sample
from allmrec_pipeline.llm.prompt import CANDIDATE
N = int(sys.argv[1]) if len(sys.argv) > 1 else 600
catalog, _ = run_catalog("")
stage2, llms, llm = catalog.load("params:stage2"), catalog.load("params:llms"), catalog.load("params:llm")
cands = catalog.load("eval_candidates"); item_index = catalog.load("item_index")
seqs = catalog.load("sequences"); train = catalog.load("train_sequences")
pop = catalog.load("item_popularity")
backbone = load_backbone(catalog.load("cf_model"), expected_n_items=len(item_index)).requires_grad_(False)
titles = item_titles(catalog.load("items"), item_index)
table = item_table(stage2["item_source"], catalog.load("joint_item_embeddings"), backbone)
_, model, tok = load_llm(llms, llm)
torch.manual_seed(42)
rec = build_recommender(model, tok, stage2, wording_for(stage2, catalog.load("params:dataset")), table, titles, backbone.hidden_size).eval()
n_items = len(item_index)
valid_users = set(cands.loc[cands.split == "valid", "user_idx"])
full = seqs.set_index("user_idx")["items"]
rng = rng_for(7, "probe/users")
pool = train[(train["items"].map(len) >= 2) & ~train.user_idx.isin(valid_users)].reset_index(drop=True)
perm = rng.permutation(len(pool))
users = pool.iloc[np.sort(perm[:N])].reset_index(drop=True)
dev = pool.iloc[np.sort(perm[N:])].reset_index(drop=True)
group = pop.set_index("item_idx")["group"]

def make(kind, users=users, want=None, limit=None):
    r = rng_for(7, f"probe/neg/{kind}")
    out = []
    for u, items in zip(users.user_idx, users["items"]):
        items = list(map(int, items)); f = list(map(int, full[u]))
        if kind == "last":
            hist, tgt = items[:-1], items[-1]
        else:
            hist, tgt = items, f[len(items)]
        if want is not None and group.get(tgt) != want:
            continue
        if limit is not None and len(out) >= limit:
            break
        seen = set(f); negs = []
        while len(negs) < 19:
            i = int(r.integers(1, n_items + 1))
            if i not in seen and i not in negs: negs.append(i)
        c = [tgt, *negs]; order = r.permutation(20); c = [c[i] for i in order]
        out.append((hist, c, int(np.flatnonzero(order == 0)[0])))
    return pd.DataFrame({"history": [h for h, _, _ in out], "candidates": [c for _, c, _ in out],
                         "target_item_idx": [c[p] for _, c, p in out]})

sets = {}
rows = cands[(cands.scenario == "overall") & (cands.split == "valid")].reset_index(drop=True)
sets["overall"] = rows.iloc[np.sort(rng_for(42, "probe/overall").choice(len(rows), 500, replace=False))].reset_index(drop=True)
sets["cold_item"] = make("valid", dev, "cold", 500)
sets["warm_item"] = make("valid", dev, "warm", 300)
sets["train_valid"] = make("valid")

words = [text_floors.title_words(t) for t in titles]
counts = np.zeros(n_items + 1); counts[pop.item_idx.to_numpy()] = pop["count"].to_numpy()
out = {}
for name, rows in sets.items():
    hist = [list(map(int, h)) for h in rows["history"]]
    cand = np.stack([np.asarray(c, dtype=np.int64) for c in rows["candidates"]])
    uv = user_vectors(backbone, hist)
    cf = cf_logits(backbone, uv, list(cand))
    samples = row_samples(rows, uv, cf)
    t = time.perf_counter()
    lasts, cs, qs, hs = [], [], [], []
    with torch.no_grad():
        for i in range(0, len(samples), 4):
            b = samples[i:i+4]
            batch = rec.prompts(b)
            from allmrec_pipeline.llm.layers import first_layers
            with first_layers(model, rec.config.head_layer):
                hsall = model.base_model(**batch.model_inputs(), output_hidden_states=True).hidden_states
            for r, (pos, smp) in enumerate(zip(batch.positions, b)):
                rowf = {}
                for layer in (6, 9, 12):
                    h = hsall[layer][r].float()
                    q = [p - 1 for p in pos["candidate"]]
                    lens = [len(rec.title_ids[c]) for c in smp.candidates]
                    span = torch.stack([h[p - L: p + 1].mean(0) for p, L in zip(q, lens)])
                    hq = [p - 1 for p in pos["history"]]
                    hlens = [len(rec.title_ids[c]) for c in smp.history[-rec.config.n_history:]]
                    hspan = torch.stack([h[p - L: p + 1].mean(0) for p, L in zip(hq, hlens)])
                    rowf[f"last{layer}"] = h[-1].half(); rowf[f"quote{layer}"] = h[q].half(); rowf[f"span{layer}"] = span.half()
                    rowf[f"hquote{layer}"] = h[hq].mean(0).half(); rowf[f"hspan{layer}"] = hspan.mean(0).half()
                lasts.append(rowf)
    print(name, len(samples), f"{(time.perf_counter()-t)/len(samples):.3f}s/row", flush=True)
    out[name] = {**{k: torch.stack([d[k] for d in lasts]) for k in lasts[0]},
                 "cf": torch.from_numpy(cf), "target": torch.tensor([s.target_pos for s in samples]),
                 "overlap": torch.from_numpy(text_floors.overlap_scores(hist, cand, words, 10)),
                 "count": torch.from_numpy(counts[cand]), "cand_idx": torch.from_numpy(cand)}
    torch.save(out, "bench/results/probes/feats2.pt")
print("saved")
