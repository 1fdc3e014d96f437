# the count-gated fusion with the LLM's title reader (v2 features): a(c) z(cf) + b(c) head(c), per-bucket
# scalars for cold candidates (at most 5 training interactions) and the rest; fitted by cross-entropy, and with
# the bucket weights chosen by Hit@1 on the training samples around a head fitted alone
import sys, itertools, numpy as np, torch, torch.nn.functional as F
sys.path.insert(0, "src")
exec(open("bench/probes/fit_v2_layers_and_pooling.py").read().split("T = D[\"train_valid\"]")[0])
T = D["train_valid"]
class Gated(torch.nn.Module):
    def __init__(self, dim=128):
        super().__init__(); self.q = torch.nn.Linear(576, dim); self.k = torch.nn.Linear(576, dim)
        self.a = torch.nn.Parameter(torch.ones(2)); self.b = torch.nn.Parameter(torch.ones(2))
    def text(self, S):
        return torch.einsum("bd,bcd->bc", self.q(S["hspan12"]), self.k(S["span12"])) * self.q.out_features ** -0.5
    def forward(self, S):
        cold = (S["count"] <= 5).long()
        return self.a[cold] * z(S["cf"]) + self.b[cold] * self.text(S)
torch.manual_seed(0); m = Gated(); ep = train(m, T)
report(f"gated CE e{ep} a{m.a.data.numpy().round(2)} b{m.b.data.numpy().round(2)}", m)
torch.manual_seed(0); h = Head("hspan12", "span12", False); ep = train(h, T)
def score(S, g):
    a_cold, w_cold, w_warm = g; cold = S["count"] <= 5
    with torch.no_grad(): t = z(torch.einsum("bd,bcd->bc", h.q(S["hspan12"]), h.k(S["span12"])))
    return torch.where(cold, a_cold, 1.0) * z(S["cf"]) + torch.where(cold, w_cold, w_warm) * t
grid = list(itertools.product([1, .5, 0], [0, .5, 1, 2, 3], [0, .25, .5, 1]))
best = sorted(grid, key=lambda g: -hit(score(T, g), T["target"]).mean())[:3]
for g in best:
    report(f"grid {g} (head alone e{ep})", lambda S, g=g: score(S, g))
