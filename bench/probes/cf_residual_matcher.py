"""A text matcher fitted against the CF model's scores (docs/experiments.md, 2026-12-07, "a text matcher fitted
on what the CF model misses"): the default's matcher is fitted on the titles alone, so much of what it learns
(franchise, platform, brand) the CF model already knows. Fitted with z(CF) as a fixed offset in the softmax
(score = a·z(CF) + t·matcher), it can only gain by what the CF model lacks. Is that complement larger, on warm
targets above all, than the default matcher's?

Rows: every user outside the frozen rows at the validation position (history: the training sequence; target:
the next item, which the CF model never trained on; 19 negatives drawn as split_sequences draws them), split
by user into halves: A fits, B judges (B1 chooses each fusion's weight, B2 judges it). Three matchers, each of
rank ``gate_cosine_rank`` over the run's title vectors: ``plain`` (``train_text_matcher`` on every training
transition, as stage 2 fits it), ``refit`` (``plain`` fitted further on A's rows alone, no offset: the control
for the rows; a tenth of A held out chooses the step) and ``residual`` (``plain`` fitted further on A's rows with the z(CF) offset). Fusion: z(CF) +
w·z(matcher). No frozen row is read.

    python bench/probes/cf_residual_matcher.py [--env video_games] > bench/results/probes/cf_residual_matcher_<env>.txt
"""
import copy, sys, time
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _outside_rows import hits, interval, load_run, parser, rows_at  # noqa: E402
from allmrec_pipeline.llm.inputs import cf_logits, user_vectors
from allmrec_pipeline.llm.text_matcher import (
    MatcherTraining, TextMatcher, match_scores, recent_matrix, train_text_matcher,
)
from allmrec_pipeline.text_floors import zscore_rows

ap = parser(cache=False)
ap.add_argument("--steps", type=int, default=2000)
args = ap.parse_args()
t0 = time.time()
torch.manual_seed(0)
run = load_run(args.env, args.max_users, 1, text_gate=False)
seed, backbone, counts, vectors = run.seed, run.backbone, run.counts, run.title_vectors.float()
stage2, train = run.catalog.load("params:stage2"), run.catalog.load("train_sequences")
hist, tgt, C, group = rows_at(run, 0, "probe/many_choice_rows")
with torch.no_grad():
    cf = zscore_rows(np.asarray(cf_logits(backbone, user_vectors(backbone, hist), list(C)), dtype=np.float32))
T = np.array([int(np.flatnonzero(c == t)[0]) for c, t in zip(C, tgt)])
n_hist, rank = int(stage2["model"]["n_history"]), int(stage2["model"]["gate_cosine_rank"])
R = recent_matrix(hist, n_hist)
print(f"{len(T)} rows ({int((group == 'cold').sum())} cold targets, {int((group == 'warm').sum())} warm) in "
      f"{time.time() - t0:.0f} s; n_history {n_hist}, rank {rank}")

tr = stage2["training"]
plain = TextMatcher(vectors.shape[1], rank, seed=seed)
train_text_matcher(plain, list(train["items"]), vectors, counts, n_hist, MatcherTraining(
    tr["matcher_steps"], tr["matcher_batch_size"], tr["matcher_negatives"], tr["matcher_lr"], tr["matcher_max_count"]),
    seed, progress=False)
half = len(T) // 2
A, B = np.arange(half), np.arange(half, len(T))


def refit(offset: bool) -> TextMatcher:
    """``plain`` fitted further on A's rows (a tenth of them held out: the state of the lowest held-out loss,
    checked every 25 steps, is kept)."""
    m = copy.deepcopy(plain).requires_grad_(True).train()
    a, t = torch.nn.Parameter(torch.tensor(1.0)), torch.nn.Parameter(torch.tensor(10.0))
    opt = torch.optim.Adam([*m.parameters(), t, *([a] if offset else [])], lr=float(tr["matcher_lr"]))
    rng = np.random.default_rng(seed)
    cft, Ct, Rt, Tt = torch.from_numpy(cf), torch.from_numpy(C), torch.from_numpy(R), torch.from_numpy(T)
    fit, held = A[: len(A) * 9 // 10], torch.from_numpy(A[len(A) * 9 // 10:])

    def loss_on(rows):
        s = t * m(vectors[Rt[rows]], vectors[Ct[rows]]) + (a * cft[rows] if offset else 0)
        return torch.nn.functional.cross_entropy(s, Tt[rows])

    with torch.no_grad():
        best = (loss_on(held).item(), 0, copy.deepcopy(m.state_dict()), a.item(), t.item())
    for step in range(1, args.steps + 1):
        loss = loss_on(torch.from_numpy(rng.choice(fit, 256)))
        opt.zero_grad(); loss.backward(); opt.step()
        if step % 25 == 0:
            with torch.no_grad():
                held_loss = loss_on(held).item()
            if held_loss < best[0]:
                best = (held_loss, step, copy.deepcopy(m.state_dict()), a.item(), t.item())
    m.load_state_dict(best[2])
    print(f"  refit (offset {offset}): kept step {best[1]} of {args.steps} (held-out loss {best[0]:.3f}), "
          f"a {best[3]:.2f}, t {best[4]:.2f}")
    return m.requires_grad_(False).eval()


def zmatch(m: TextMatcher) -> np.ndarray:
    return zscore_rows(match_scores(m, hist, C, vectors, n_hist).astype(np.float32))


Z = {"plain": zmatch(plain), "refit": zmatch(refit(False)), "residual": zmatch(refit(True))}
W = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
B1, B2 = B[: len(B) // 2], B[len(B) // 2:]
hit = {(k, w): hits(cf + w * Z[k], T) for k in Z for w in W}
print(f"\nHit@1 on B ({len(B)} rows) of z(CF) + w·z(matcher): all / warm targets / cold targets")
for k in Z:
    for w in W:
        h = hit[k, w][B]
        print(f"  {k:9s} w={w:<4} {h.mean():.3f} / {h[group[B] == 'warm'].mean():.3f} / {h[group[B] == 'cold'].mean():.3f}")
print(f"\nw chosen on B1 ({len(B1)} rows: the best overall Hit@1), judged on B2 ({len(B2)}), paired 95% bootstrap:")
best = {k: max(W, key=lambda w: hit[k, w][B1].mean()) for k in Z}
cf_hit = hits(cf, T)
for k in Z:
    h = hit[k, best[k]]
    parts = [f"{name} − cf {interval((h - cf_hit)[B2][mask], seed)}" for name, mask in
             (("all", slice(None)), ("warm", group[B2] == "warm"), ("cold", group[B2] == "cold"))]
    print(f"  {k:9s} w={best[k]}: " + "; ".join(parts))
for k in ("refit", "residual"):
    d = hit[k, best[k]] - hit["plain", best["plain"]]
    parts = [f"{name} {interval(d[B2][mask], seed)}" for name, mask in
             (("all", slice(None)), ("warm", group[B2] == "warm"), ("cold", group[B2] == "cold"))]
    print(f"  {k} − plain: " + "; ".join(parts))
print(f"({time.time() - t0:.0f} s)")
