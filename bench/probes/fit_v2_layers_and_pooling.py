import sys, numpy as np, torch, torch.nn.functional as F
sys.path.insert(0, "src")
from allmrec_pipeline import metrics
from allmrec_pipeline.text_floors import zscore_rows
D = torch.load("bench/results/probes/feats2.pt")
for k in D:
    for f in list(D[k]):
        if D[k][f].dtype == torch.float16: D[k][f] = D[k][f].float()
SC = ["overall", "cold_item", "warm_item"]
def z(x): return torch.from_numpy(zscore_rows(x.numpy().astype(np.float64))).float()
def hit(s, t): return metrics.scores_per_row(s.detach().numpy(), t.numpy(), ("hit_at_1",))["hit_at_1"]
base = {sc: hit(D[sc]["cf"], D[sc]["target"]) for sc in SC}
ovl = {sc: hit(D[sc]["overlap"], D[sc]["target"]) for sc in SC}
print("cf", {sc: round(base[sc].mean(), 3) for sc in SC}, "overlap", {sc: round(ovl[sc].mean(), 3) for sc in SC})
def report(name, fn):
    out = []
    for sc in SC:
        with torch.no_grad(): h = hit(fn(D[sc]), D[sc]["target"])
        d = metrics.paired_bootstrap(h, base[sc], 1000, 0.95, 0)
        out.append(f"{sc[:4]} {h.mean():.3f} ({d['difference']:+.3f} [{d['ci_low']:+.3f},{d['ci_high']:+.3f}])")
    print(f"{name:34s}", " | ".join(out), flush=True)
class Head(torch.nn.Module):
    def __init__(self, qf, kf, skip, dim=128):
        super().__init__(); self.qf, self.kf, self.skip = qf, kf, skip
        self.q = torch.nn.Linear(576, dim); self.k = torch.nn.Linear(576, dim)
        if skip: torch.nn.init.zeros_(self.q.weight); torch.nn.init.zeros_(self.q.bias)
    def forward(self, S):
        s = torch.einsum("bd,bcd->bc", self.q(S[self.qf]), self.k(S[self.kf])) * 128 ** -0.5
        return s + (z(S["cf"]) if self.skip else 0)
def train(m, T, epochs=60, lr=1e-3, seed=0):
    g = torch.Generator().manual_seed(seed); n = len(T["target"]); order = torch.randperm(n, generator=g)
    held, fit = order[: n // 5], order[n // 5:]
    opt = torch.optim.Adam(m.parameters(), lr=lr)
    sub = lambda idx: {k: v[idx] for k, v in T.items()}
    best = (1e9, None, 0)
    for ep in range(epochs + 1):
        if ep:
            for ch in fit[torch.randperm(len(fit), generator=g)].split(16):
                loss = F.cross_entropy(m(sub(ch)), T["target"][ch]); opt.zero_grad(); loss.backward(); opt.step()
        with torch.no_grad(): hl = F.cross_entropy(m(sub(held)), T["target"][held]).item()
        if hl < best[0]: best = (hl, {k: v.clone() for k, v in m.state_dict().items()}, ep)
    m.load_state_dict(best[1]); return best[2]
T = D["train_valid"]
print("train cf", hit(T["cf"], T["target"]).mean().round(3), "n", len(T["target"]))
for L in (6, 9, 12):
    report(f"cos span{L}~hspan{L} (no training)", lambda S, L=L: F.cosine_similarity(S[f"span{L}"], S[f"hspan{L}"][:, None], dim=-1))
for L in (6, 9, 12):
    for kf, qf in [(f"quote{L}", "last12"), (f"span{L}", "last12"), (f"span{L}", f"hspan{L}")]:
        for skip in (False, True):
            torch.manual_seed(0); m = Head(qf, kf, skip); ep = train(m, T)
            report(f"{qf}x{kf} {'skip' if skip else 'head'} e{ep}", m)
