import numpy as np
import pandas as pd

from allmrec_pipeline import metrics
from allmrec_pipeline.models.data import popularity_counts
from allmrec_pipeline.pipelines.evaluate_scenarios.scorers import score_popularity


def test_popularity_ranks_candidates_by_training_interactions_and_ties_foreign_items():
    item_popularity = pd.DataFrame({"item_idx": [1, 2, 4], "count": [5, 9, 1]})  # item 3 never trained on
    counts = popularity_counts(item_popularity, n_items=4)
    np.testing.assert_array_equal(counts, [0, 5, 9, 0, 1])
    rows = pd.DataFrame({"candidates": [[1, 2, 3], [4, 3, 1]]})

    scores = score_popularity(counts, rows).scores
    np.testing.assert_array_equal(scores, [[5, 9, 0], [1, 0, 5]])
    assert scores.argmax(axis=1).tolist() == [1, 2]  # the most trained-on candidate of each row ranks first

    foreign = score_popularity(None, rows).scores  # no counts for another domain's items: all tie
    better, ties = metrics.target_rank_counts(foreign, foreign[:, 0])
    hit = metrics.per_row_metrics(better, ties, ("hit_at_1",))["hit_at_1"]
    np.testing.assert_allclose(hit, [1 / 3, 1 / 3])  # exactly chance, in expectation
