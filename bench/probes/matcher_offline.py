"""The text matcher before it was built in (`llm.text_matcher` is its in-model form): W = I + A Bᵀ (rank r) on the
frozen title vectors, scored against the nearest (max) or the mean of the 10 most recent history titles, trained
on the training sequences' transitions (next items with at most max_count interactions) against 49 uniform
negatives; Hit@1 on the 1,000 validation rows per scenario, paired with the untrained cosine of the same pool.
SAVE=<dir> keeps the scores per scenario (<dir>/<scenario>.npy).

    python bench/probes/matcher_offline.py {-|video_games} {max|mean} <rank> <steps> [<max_count>]
"""
import sys, time, numpy as np, torch
sys.path.insert(0, "bench")
from _common import run_catalog, title_vector_frame
from allmrec_pipeline import metrics, text_floors
from allmrec_pipeline.llm.inputs import embedding_table
env = sys.argv[1] if sys.argv[1] != "-" else None; pool = sys.argv[2]; rank = int(sys.argv[3]); steps = int(sys.argv[4])
torch.manual_seed(0); rng = np.random.default_rng(0)
cat, _ = run_catalog("", env=env)
V = embedding_table(title_vector_frame(cat), "vector").float()  # (N+1, d)
N = V.shape[0] - 1
tr = cat.load("train_sequences"); cands = cat.load("eval_candidates")
H10, TG = [], []
for seq in tr["items"]:
    seq = [int(i) for i in seq]
    for t in range(1, len(seq)):
        H10.append(seq[max(0, t - 10):t]); TG.append(seq[t])
Hp = np.zeros((len(H10), 10), dtype=np.int64)
for r, h in enumerate(H10): Hp[r, 10 - len(h):] = h
TG = np.array(TG)
cnt = np.bincount(np.concatenate([np.asarray(x, dtype=np.int64) for x in tr["items"]]), minlength=V.shape[0])
maxc = int(sys.argv[5]) if len(sys.argv) > 5 else 10**9
keep = cnt[TG] <= maxc; Hp, TG = Hp[keep], TG[keep]
print("transitions", len(TG), flush=True)
d = V.shape[1]
A = torch.nn.Parameter(torch.zeros(d, rank)); B = torch.nn.Parameter(torch.randn(d, rank) * 0.01)
scale = torch.nn.Parameter(torch.tensor(10.0))
def score(hist, cand):  # hist (R,10), cand (R,C)
    vh, vc = V[hist], V[cand]                      # (R,10,d), (R,C,d)
    wc = vc + (vc @ B) @ A.T                       # (I + A B^T)^T ... low rank adapter on candidate side
    s = torch.einsum("rhd,rcd->rch", vh, wc)       # (R,C,10)
    mask = (hist == 0)[:, None, :]
    if pool == "max":
        s = s.masked_fill(mask, -1e4).max(-1).values
    else:
        w = (~mask).float(); s = (s * w).sum(-1) / w.sum(-1).clamp_min(1)
    return s
opt = torch.optim.Adam([A, B, scale], lr=3e-3)
t0 = time.time()
for step in range(steps):
    b = rng.integers(0, len(TG), 256)
    neg = rng.integers(1, N + 1, (256, 49))
    cand = torch.from_numpy(np.concatenate([TG[b][:, None], neg], 1))
    s = score(torch.from_numpy(Hp[b]), cand) * scale
    loss = torch.nn.functional.cross_entropy(s, torch.zeros(256, dtype=torch.long))
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 500 == 0: print(step, round(loss.item(), 3), round(time.time() - t0), flush=True)
def score_untrained(hist, cand):
    s = torch.einsum("rhd,rcd->rch", V[hist], V[cand])
    return s.masked_fill((hist == 0)[:, None, :], -1e4).max(-1).values.masked_fill((hist == 0).all(1)[:, None], 0.0)
def hit(s, t): return metrics.scores_per_row(s, t, ("hit_at_1",))["hit_at_1"]
for scen in ("overall", "cold_item", "warm_item"):
    rows = cands[(cands.scenario == scen) & (cands.split == "valid")].reset_index(drop=True)
    C = np.stack(rows["candidates"].to_numpy()).astype(np.int64)
    T = np.array([int(np.flatnonzero(c == t)[0]) for c, t in zip(C, rows["target_item_idx"])])
    hp = np.zeros((len(rows), 10), dtype=np.int64)
    for r, h in enumerate(rows["history"]):
        h = [int(i) for i in h if int(i) != 0][-10:]; hp[r, 10 - len(h):] = h
    with torch.no_grad(): s = score(torch.from_numpy(hp), torch.from_numpy(C)).numpy()
    if pool == "max":  # the untrained matcher: the nearest history title (text_floors has the mean only)
        with torch.no_grad(): base = score_untrained(torch.from_numpy(hp), torch.from_numpy(C)).numpy()
    else:
        base = text_floors.cosine_scores(list(rows["history"]), C, V.double().numpy(), 10)
    import os; out = os.environ.get("SAVE")
    if out: os.makedirs(out, exist_ok=True); np.save(f"{out}/{scen}.npy", s)
    hb, hs = hit(base, T), hit(s, T); p = metrics.paired_bootstrap(hs, hb, seed=0)
    print(f"{scen:10s} cos_{pool} {hb.mean():.3f} trained {hs.mean():.3f} diff {p['difference']:+.3f} [{p['ci_low']:+.3f},{p['ci_high']:+.3f}]", flush=True)
