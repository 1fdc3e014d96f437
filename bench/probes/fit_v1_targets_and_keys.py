import sys, numpy as np, torch, torch.nn.functional as F
sys.path.insert(0, "src")
from allmrec_pipeline import metrics
from allmrec_pipeline.text_floors import zscore_rows
from allmrec_pipeline.models.projectors import CandidateHead
from allmrec_pipeline.llm.training import fit_head
D = torch.load(sys.argv[1] if len(sys.argv) > 1 else "bench/results/probes/feats.pt")
SC = ["overall", "cold_item", "warm_item"]
def z(x): return torch.from_numpy(zscore_rows(x.numpy().astype(np.float64))).float()
def hit(scores, tgt):
    return metrics.scores_per_row(scores.detach().numpy(), tgt.numpy(), ("hit_at_1",))["hit_at_1"]
base = {sc: {"cf": hit(D[sc]["cf"], D[sc]["target"]), "overlap": hit(D[sc]["overlap"], D[sc]["target"]),
             "cf_text": hit(z(D[sc]["cf"]) + 0.5 * z(D[sc]["overlap"]), D[sc]["target"])} for sc in SC}
def report(name, fn):
    out = []
    for sc in SC:
        h = hit(fn(D[sc]), D[sc]["target"])
        d = metrics.paired_bootstrap(h, base[sc]["cf"], 1000, 0.95, 0)
        out.append(f"{sc[:8]} {h.mean():.3f} ({d['difference']:+.3f} [{d['ci_low']:+.3f},{d['ci_high']:+.3f}])")
    print(f"{name:28s}", " | ".join(out), flush=True)
for k in ["cf", "overlap", "cf_text"]:
    print(f"{k:28s}", " | ".join(f"{sc[:8]} {base[sc][k].mean():.3f}" for sc in SC))
for tr in ["train_last", "train_valid"]:
    T = D[tr]
    print(tr, "cf hit on train samples", hit(T["cf"], T["target"]).mean().round(3), "overlap", hit(T["overlap"], T["target"]).mean().round(3))
    for feat in ["cand", "quote"]:
        for prior in [False, True]:
            torch.manual_seed(0)
            head = CandidateHead(T["last"].shape[1], 128)
            if prior:
                torch.nn.init.zeros_(head.query.weight); torch.nn.init.zeros_(head.query.bias)
            info = fit_head(head, T["last"], T[feat], T["target"], 100, 1e-3, 0, prior=z(T["cf"]) if prior else None)
            head.eval()
            fn = (lambda S, h=head, f=feat, p=prior: (h(S["last"], S[f]) + (z(S["cf"]) if p else 0)))
            report(f"{tr}/{feat}/{'skip' if prior else 'head'} e{info['best_epoch']}", lambda S, fn=fn: torch.no_grad()(fn)(S))
print("--- cf + w*overlap, w chosen on each training set")
for tr in ["train_last", "train_valid"]:
    T = D[tr]
    best = max([0, .25, .5, .75, 1, 1.5, 2, 3], key=lambda w: hit(z(T["cf"]) + w * z(T["overlap"]), T["target"]).mean())
    report(f"{tr}/cf+{best}*overlap", lambda S, w=best: z(S["cf"]) + w * z(S["overlap"]))
