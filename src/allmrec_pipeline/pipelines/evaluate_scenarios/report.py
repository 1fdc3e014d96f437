"""The human-readable report: a markdown table (models × scenarios, Hit@1 with its CI and row count), the
paired-difference tables (each model against ``cf`` and against the scenario's best floor) and bar charts."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure


def markdown_table(scenario_metrics: pd.DataFrame, metric: str, n_candidates: int, title: str) -> str:
    """Models as rows, scenarios as columns, ``value [ci_low, ci_high] (n)``, and the random floor."""
    rows = scenario_metrics[scenario_metrics["metric"] == metric]
    scenarios = list(dict.fromkeys(rows["scenario"]))
    lines = [
        f"# {title}",
        "",
        f"{metric} with its 95% interval (Wilson score for hit rates, percentile bootstrap otherwise) and row count.",
        "",
    ]
    lines.append("| model | " + " | ".join(scenarios) + " |")
    lines.append("|---|" + "---|" * len(scenarios))
    for model, group in rows.groupby("model", sort=False):
        cells = group.set_index("scenario")
        lines.append(
            f"| {model} | "
            + " | ".join(
                f"{cells.loc[s, 'value']:.3f} [{cells.loc[s, 'ci_low']:.3f}, {cells.loc[s, 'ci_high']:.3f}] (n={int(cells.loc[s, 'n'])})"
                if s in cells.index
                else "—"
                for s in scenarios
            )
            + " |"
        )
    lines += [
        "",
        f"Random floor: Hit@1 = 1/{n_candidates} = {1 / n_candidates:.3f} (one target among {n_candidates} candidates).",
        "",
    ]
    return "\n".join(lines)


def _signed(value: float) -> str:
    return f"{value:+.3f}".replace("-", "−")


def paired_tables(paired: pd.DataFrame, metric: str, models: list[str] | None = None) -> str:
    """Tables of models × scenarios: ``difference [ci_low, ci_high] (n)`` against ``cf``, against the best floor
    and (where other LLM-based models are scored) against ``a_llmrec``, a difference whose interval excludes 0 in
    bold; rows in the order of ``models`` when given."""
    rows = paired[paired["metric"] == metric]
    lines = [
        f"## Paired differences in {metric}",
        "",
        "Model minus reference on the rows both scored, with a 95% paired-bootstrap interval (rows resampled) "
        "and the number of shared rows. **Bold**: the interval excludes 0.",
        "",
    ]
    for reference, heading in (
        ("cf", "Model − cf"),
        ("best_floor", "Model − the scenario's best floor"),
        ("a_llmrec", "Model − a_llmrec"),
    ):
        part = rows[rows["reference"] == reference]
        if part.empty:
            continue
        scenarios = list(dict.fromkeys(part["scenario"]))
        named = part.drop_duplicates("scenario").set_index("scenario")["reference_model"]
        header = [f"{s} (− {named[s]})" if reference == "best_floor" else s for s in scenarios]
        lines += [
            f"### {heading}",
            "",
            "| model | " + " | ".join(header) + " |",
            "|---|" + "---|" * len(scenarios),
        ]
        present = set(part["model"])
        for model in (m for m in (models or list(dict.fromkeys(part["model"]))) if m in present):
            cells = part[part["model"] == model].set_index("scenario")
            texts = []
            for scenario in scenarios:
                if scenario not in cells.index:
                    texts.append("—")
                    continue
                cell = cells.loc[scenario]
                text = (
                    f"{_signed(cell['difference'])} [{_signed(cell['ci_low'])}, {_signed(cell['ci_high'])}]"
                )
                texts.append((f"**{text}**" if cell["significant"] else text) + f" (n={int(cell['n'])})")
            lines.append(f"| {model} | " + " | ".join(texts) + " |")
        lines.append("")
    return "\n".join(lines)


def bar_charts(scenario_metrics: pd.DataFrame, metric: str, n_candidates: int) -> dict[str, Figure]:
    """One figure per scenario: the metric per model with its interval, and the random floor."""
    figures = {}
    rows = scenario_metrics[scenario_metrics["metric"] == metric]
    for scenario, group in rows.groupby("scenario", sort=False):
        # a bare Figure, not pyplot: no global backend is switched, so a notebook keeps its inline plots
        fig = Figure(figsize=(max(6.0, 0.75 * len(group)), 3.6))
        ax = fig.subplots()
        errors = [group["value"] - group["ci_low"], group["ci_high"] - group["value"]]
        ax.bar(group["model"], group["value"], yerr=errors, capsize=4, color="#4C72B0")
        if metric == "hit_at_1":
            ax.axhline(1 / n_candidates, color="grey", linestyle="--", label=f"random 1/{n_candidates}")
            ax.legend(loc="upper right")
        ax.tick_params(axis="x", rotation=40)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        ax.set_ylabel(metric)
        ax.set_title(f"{scenario} (n={int(group['n'].max())})")
        ax.set_ylim(0, 1)
        fig.tight_layout()
        figures[f"{scenario}.png"] = fig
    return figures
