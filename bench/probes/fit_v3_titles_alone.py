import sys, numpy as np, torch
sys.path.insert(0, "src")
from allmrec_pipeline import metrics
from allmrec_pipeline.llm.training import fit_head
from allmrec_pipeline.models.projectors import CandidateHead
from allmrec_pipeline.text_floors import zscore_rows
path = sys.argv[1]
D = torch.load(path); F = D["feats"]; data = D["data"]
import pandas as pd
counts = None
def hit(scores, tgt): return (np.argmax(scores, 1) == tgt.numpy()).astype(float)
def paired(a, b): return metrics.paired_bootstrap(a, b, 1000, 0.95, 0)
class MaxHead(torch.nn.Module):
    def __init__(s, h, d=128, tau=0.1):
        super().__init__(); s.q = torch.nn.Linear(h, d); s.k = torch.nn.Linear(h, d); s.tau = tau; s.scale = d ** -0.5
    def forward(s, hist, cand):  # hist (B,10,H) zeros = pad; cand (B,C,H)
        sims = torch.einsum("bhd,bcd->bch", s.q(hist), s.k(cand)) * s.scale
        pad = (hist.abs().sum(-1) == 0)[:, None, :]
        sims = sims.masked_fill(pad, -1e4)
        return s.tau * torch.logsumexp(sims / s.tau, dim=-1)
def feats(d, kind):
    H = F[d["hist"]]  # (N,10,H); index 0 -> zeros
    if kind == "mean":
        m = (d["hist"] > 0).float()
        return (H * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1), F[d["cand"]]
    return H, F[d["cand"]]
base = {k: {"cf": hit(data[k]["cf"].numpy(), data[k]["target"]), "overlap": hit(data[k]["overlap"].numpy(), data[k]["target"])} for k in ("overall", "cold_item", "warm_item")}
print(path, "cf", {k: round(v["cf"].mean(), 3) for k, v in base.items()}, "overlap", {k: round(v["overlap"].mean(), 3) for k, v in base.items()}, flush=True)
def cat(a, b): return {k: torch.cat([a[k], b[k]]) for k in a}
for ntrain in (1500, 6000, 16000):
    tr = data["train_valid"] if ntrain == 1500 else cat(data["train_valid"], {k: v[: ntrain - 1500] for k, v in data["extra"].items()})
    for kind in ("mean", "max"):
        torch.manual_seed(0)
        head = CandidateHead(F.shape[1], 128) if kind == "mean" else MaxHead(F.shape[1])
        q, c = feats(tr, kind)
        fig = fit_head(head, q, c, tr["target"], 60, 1e-3, 42, holdout=0.2)
        line = f"n={len(tr['target'])} {kind} e{fig['best_epoch']}"
        for k in ("overall", "cold_item", "warm_item"):
            with torch.no_grad():
                s = head(*feats(data[k], kind)).numpy()
            h = hit(s, data[k]["target"])
            d_ov = paired(h, base[k]["overlap"])
            fused = zscore_rows(data[k]["cf"].numpy()) + 0.5 * zscore_rows(s)
            hf = hit(fused, data[k]["target"])
            line += f" | {k} {h.mean():.3f} (-ovl {d_ov['difference']:+.3f} [{d_ov['ci_low']:+.3f},{d_ov['ci_high']:+.3f}]) cf+0.5h {hf.mean():.3f}"
        print(line, flush=True)
