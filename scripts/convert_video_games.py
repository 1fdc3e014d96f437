"""Convert the GenRec/LLMRank Video Games 5-core into the shipped sequence-file format.

Run once, from the project root, with the source folder as the only argument:

    python scripts/convert_video_games.py ../shared/data/amazon2018_video_games

It writes into ``data/01_raw/amazon2018_video_games/``:

- ``user_sequence.txt``: one user per line, ``reviewerID`` then the item ASINs in chronological order,
  space-separated (the same layout as the Beauty ``user_sequence.txt``);
- ``items_asin_title.tsv``: ``asin<TAB>title<TAB>title_match`` for every item, unquoted (titles may contain
  ``"``); ``title_match`` keeps the upstream join flag (``unique`` or ``twin-ambiguous``).

The integer ids of ``Games.inter.json`` are mapped back to ASINs / reviewerIDs through ``Games.item2id`` and
``Games.user2id``. Every id must resolve; the script fails otherwise.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

TARGET = Path("data/01_raw/amazon2018_video_games")


def _read_id_map(path: Path) -> dict[int, str]:
    mapping = {}
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            key, _, idx = line.rstrip("\n").partition("\t")
            if not key or not idx.isdigit():
                raise ValueError(f"{path}:{line_no}: expected '<id><TAB><int>', got {line!r}")
            mapping[int(idx)] = key
    return mapping


def main(source: Path) -> None:
    items = _read_id_map(source / "Games.item2id")
    users = _read_id_map(source / "Games.user2id")
    sequences = json.loads((source / "Games.inter.json").read_text(encoding="utf-8"))
    TARGET.mkdir(parents=True, exist_ok=True)
    n_events = 0
    with (TARGET / "user_sequence.txt").open("w", encoding="utf-8") as out:
        for user_idx in sorted(sequences, key=int):
            asins = [items[i] for i in sequences[user_idx]]
            n_events += len(asins)
            out.write(" ".join([users[int(user_idx)], *asins]) + "\n")
    with (
        (source / "games_items_asin_title.tsv").open(encoding="utf-8", newline="") as src,
        (TARGET / "items_asin_title.tsv").open("w", encoding="utf-8", newline="") as out,
    ):
        # Upstream quotes two titles CSV-style ("Ivan ""Ironman"" ..."); csv's default dialect unquotes them.
        reader = csv.DictReader(src, delimiter="\t")
        out.write("asin\ttitle\ttitle_match\n")
        n_items = 0
        for row in reader:
            if "\t" in row["title"] or "\n" in row["title"]:
                raise ValueError(f"title of {row['asin']} contains a tab or newline: {row['title']!r}")
            out.write(f"{row['asin']}\t{row['title']}\t{row['match']}\n")
            n_items += 1
    print(f"users={len(sequences)} items={n_items} interactions={n_events}")  # noqa: T201


if __name__ == "__main__":
    main(Path(sys.argv[1]))
