import sys, numpy as np, torch, torch.nn.functional as F
sys.path.insert(0, "src")
from allmrec_pipeline import metrics
from allmrec_pipeline.text_floors import zscore_rows
from allmrec_pipeline.models.projectors import CandidateHead
from allmrec_pipeline.llm.training import fit_head
D = torch.load("bench/results/probes/feats.pt")
SC = ["overall", "cold_item", "warm_item"]
def z(x): return torch.from_numpy(zscore_rows(x.numpy().astype(np.float64))).float()
def hit(scores, tgt): return metrics.scores_per_row(scores.detach().numpy(), tgt.numpy(), ("hit_at_1",))["hit_at_1"]
base = {sc: hit(D[sc]["cf"], D[sc]["target"]) for sc in SC}
def report(name, fn):
    out = []
    for sc in SC:
        with torch.no_grad(): h = hit(fn(D[sc]), D[sc]["target"])
        d = metrics.paired_bootstrap(h, base[sc], 1000, 0.95, 0)
        out.append(f"{sc[:4]} {h.mean():.3f} ({d['difference']:+.3f} [{d['ci_low']:+.3f},{d['ci_high']:+.3f}])")
    print(f"{name:30s}", " | ".join(out), flush=True)
class Wrap(torch.nn.Module):
    """query from `last`, keys from chosen features; optional learnable prior weight and per-candidate gate"""
    def __init__(self, feats, tied=False, dim=128, gate=False):
        super().__init__(); self.feats = feats
        H = 576 * len(feats)
        self.q = torch.nn.Linear(576, dim); self.k = self.q if tied and len(feats) == 1 else torch.nn.Linear(H, dim)
        self.a = torch.nn.Parameter(torch.ones(1)); self.gate = torch.nn.Linear(H, 1) if gate else None
        if gate: torch.nn.init.zeros_(self.gate.weight); torch.nn.init.zeros_(self.gate.bias)
    def forward(self, S, prior):
        keys = torch.cat([S[f] for f in self.feats], -1)
        s = torch.einsum("bd,bcd->bc", self.q(S["last"]), self.k(keys)) * 128 ** -0.5
        w = self.a if self.gate is None else self.a * torch.exp(self.gate(keys)[..., 0])
        return s + w * prior
def train(m, T, epochs=60, lr=1e-3, seed=0, wd=0.0):
    g = torch.Generator().manual_seed(seed); n = len(T["target"]); order = torch.randperm(n, generator=g)
    held, fit = order[: n // 5], order[n // 5:]
    P = z(T["cf"]); opt = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=wd)
    sub = lambda idx: {k: v[idx] for k, v in T.items()}
    best = (1e9, None, 0)
    for ep in range(epochs + 1):
        if ep:
            for ch in fit[torch.randperm(len(fit), generator=g)].split(16):
                loss = F.cross_entropy(m(sub(ch), P[ch]), T["target"][ch]); opt.zero_grad(); loss.backward(); opt.step()
        with torch.no_grad(): hl = F.cross_entropy(m(sub(held), P[held]), T["target"][held]).item()
        if hl < best[0]: best = (hl, {k: v.clone() for k, v in m.state_dict().items()}, ep)
    m.load_state_dict(best[1]); return best[2]
T = D["train_valid"]
for feats, tied, gate, wd in [(["quote"], False, False, 0), (["quote"], True, False, 0), (["quote", "cand"], False, False, 0),
                         (["quote"], False, True, 0), (["quote", "cand"], False, True, 0), (["quote"], False, False, 0.1)]:
    torch.manual_seed(0); m = Wrap(feats, tied, gate=gate)
    ep = train(m, T, wd=wd)
    report(f"{'+'.join(feats)} t{int(tied)} g{int(gate)} wd{wd} e{ep} a{m.a.item():.2f}", lambda S, m=m: m(S, z(S["cf"])))
print("--- count-gated fusion: a(c) z(cf) + b(c) head_text(c), per-bucket scalars (count<=5)")
class Gated(torch.nn.Module):
    def __init__(self, feats, dim=128, text="head"):
        super().__init__(); self.feats = feats; self.text = text
        self.q = torch.nn.Linear(576, dim); self.k = torch.nn.Linear(576 * len(feats), dim)
        self.a = torch.nn.Parameter(torch.ones(2)); self.b = torch.nn.Parameter(torch.ones(2) * 0.5)
    def forward(self, S, prior):
        cold = (S["count"] <= 5).long()
        if self.text == "head":
            keys = torch.cat([S[f] for f in self.feats], -1)
            t = torch.einsum("bd,bcd->bc", self.q(S["last"]), self.k(keys)) * 128 ** -0.5
        else:
            t = z(S["overlap"])
        return self.a[cold] * prior + self.b[cold] * t
for text in ["overlap", "head"]:
    torch.manual_seed(0); m = Gated(["quote"], text=text); ep = train(m, T, epochs=60)
    report(f"gated {text} e{ep} a{m.a.data.numpy().round(2)} b{m.b.data.numpy().round(2)}", lambda S, m=m: m(S, z(S["cf"])))
