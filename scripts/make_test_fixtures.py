"""Copy the small real-data slices the tests need from the development share into tests/fixtures/.

Run from the project root: ``python scripts/make_test_fixtures.py ../shared/data``. Tests never read the
share itself (a user's clone has none); they read only what this script wrote, which is committed.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from pathlib import Path

OUT = Path("tests/fixtures")


def _write_gz(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(line if line.endswith("\n") else line + "\n" for line in lines)


def amazon2018(share: Path, n_reviews: int = 400) -> None:
    """Genuine Magazine_Subscriptions lines, unchanged: the first reviews and every meta row of their items."""
    out = OUT / "amazon2018"
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(
        share / "amazon2018_raw/Magazine_Subscriptions_5.json.gz", "rt", encoding="utf-8"
    ) as handle:
        reviews = [next(handle) for _ in range(n_reviews)]
    asins = {json.loads(line)["asin"] for line in reviews}
    with gzip.open(
        share / "amazon2018_raw/meta_Magazine_Subscriptions.json.gz", "rt", encoding="utf-8"
    ) as handle:
        meta = [line for line in handle if json.loads(line)["asin"] in asins]
    _write_gz(out / "Magazine_Subscriptions_5.json.gz", reviews)
    _write_gz(out / "meta_Magazine_Subscriptions.json.gz", meta)


def amazon2014(share: Path, n_reviews: int = 300) -> None:
    """Real Gift_Cards 2018 rows re-serialised in the 2014 layout: reviews with the 2014 fields, meta as
    Python literals (``repr`` of a dict, as the 2014 meta files are) with a string description."""
    out = OUT / "amazon2014"
    out.mkdir(parents=True, exist_ok=True)
    fields_2014 = [
        "reviewerID",
        "asin",
        "reviewerName",
        "reviewText",
        "overall",
        "summary",
        "unixReviewTime",
        "reviewTime",
    ]
    with gzip.open(share / "amazon2018_raw/Gift_Cards_5.json.gz", "rt", encoding="utf-8") as handle:
        rows = [json.loads(next(handle)) for _ in range(n_reviews)]
    reviews = [json.dumps({k: r[k] for k in fields_2014 if k in r}) for r in rows]
    asins = {r["asin"] for r in rows}
    meta = []
    with gzip.open(share / "amazon2018_raw/meta_Gift_Cards.json.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["asin"] in asins:
                description = " ".join(record.get("description") or [])
                meta.append(
                    repr(
                        {
                            "asin": record["asin"],
                            "title": record.get("title", ""),
                            "description": description,
                            "categories": [record.get("category", [])],
                        }
                    )
                )
    _write_gz(out / "reviews_Gift_Cards_5.json.gz", reviews)
    _write_gz(out / "meta_Gift_Cards.json.gz", meta)


def amazon2023(share: Path, n_users: int = 60) -> None:
    """The 2023 benchmark CSV splits for the first users, their meta CSV rows, and the same users' reviews
    re-serialised as the 2023 JSONL layout (user_id, parent_asin, rating, timestamp, title, text)."""
    src = share / "amazon2023_all_beauty"
    out = OUT / "amazon2023"
    out.mkdir(parents=True, exist_ok=True)
    users: list[str] = []
    for split in ("train", "valid", "test"):
        with (src / f"All_Beauty.{split}.csv").open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
        if not users:
            users = list(dict.fromkeys(r["user_id"] for r in rows))[:n_users]
        kept = [r for r in rows if r["user_id"] in set(users)]
        with (out / f"All_Beauty.{split}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=reader.fieldnames)
            writer.writeheader()
            writer.writerows(kept)
    reviews = json.loads((src / "filtered_user_reviews.json").read_text(encoding="utf-8"))
    jsonl, asins = [], set()
    for entry in reviews:
        if entry["user_id"] in set(users):
            for r in entry["reviews"]:
                asins.add(r["parent_asin"])
                jsonl.append(
                    json.dumps(
                        {
                            "user_id": entry["user_id"],
                            "parent_asin": r["parent_asin"],
                            "rating": r["rating"],
                            "timestamp": r["timestamp"],
                            "title": r["title"],
                            "text": r["text"],
                        }
                    )
                )
    (out / "All_Beauty.jsonl").write_text("\n".join(jsonl) + "\n", encoding="utf-8")
    with (src / "filterd_meta_items.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        meta_rows = list(reader)
    with (out / "meta_All_Beauty.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(meta_rows)
    with (out / "meta_All_Beauty.jsonl").open("w", encoding="utf-8") as handle:
        for r in meta_rows:
            description = [r["description"]] if r["description"] else []
            handle.write(
                json.dumps({"parent_asin": r["parent_asin"], "title": r["title"], "description": description})
                + "\n"
            )


def sequence_file(share: Path, n_users: int = 300) -> None:
    """The first Beauty users' sequence lines and the title rows of their items, unchanged."""
    out = OUT / "sequence_file"
    out.mkdir(parents=True, exist_ok=True)
    src = share / "amazon2014_beauty"
    with (src / "user_sequence.txt").open(encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(n_users)]
    asins = {token for line in lines for token in line.split()[1:]}
    with (src / "items_asin_title.tsv").open(encoding="utf-8") as handle:
        header, *rows = handle.readlines()
    (out / "user_sequence.txt").write_text("".join(lines), encoding="utf-8")
    (out / "items_asin_title.tsv").write_text(
        header + "".join(r for r in rows if r.split("\t")[0] in asins), encoding="utf-8"
    )


def tables(share: Path, n_users: int = 80) -> None:
    """ml-100k (RecBole atomic files) for the first users, as generic CSV tables."""
    out = OUT / "tables"
    out.mkdir(parents=True, exist_ok=True)
    src = share / "ml-100k"
    with (src / "ml-100k.inter").open(encoding="utf-8") as handle:
        next(handle)
        rows = [line.rstrip("\n").split("\t") for line in handle]
    users = sorted({r[0] for r in rows}, key=int)[:n_users]
    kept = [r for r in rows if r[0] in set(users)]
    items = {r[1] for r in kept}
    with (out / "interactions.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "rating", "timestamp"])
        writer.writerows([[u, i, r, t] for u, i, r, t in kept])
    with (src / "ml-100k.item").open(encoding="utf-8") as handle:
        next(handle)
        item_rows = [line.rstrip("\n").split("\t") for line in handle]
    with (out / "items.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "title", "release_year", "genres"])
        writer.writerows([r[:4] for r in item_rows if r[0] in items])


def recbole(share: Path, n_users: int = 80) -> None:
    """ml-100k's RecBole atomic files (typed headers, tab separated, genres as a token_seq) for the first users,
    their lines unchanged."""
    out = OUT / "recbole"
    out.mkdir(parents=True, exist_ok=True)
    src = share / "ml-100k"
    with (src / "ml-100k.inter").open(encoding="utf-8") as handle:
        header, *lines = handle.readlines()
    users = set(sorted({line.split("\t")[0] for line in lines}, key=int)[:n_users])
    kept = [line for line in lines if line.split("\t")[0] in users]
    (out / "ml-100k.inter").write_text(header + "".join(kept), encoding="utf-8")
    items = {line.split("\t")[1] for line in kept}
    with (src / "ml-100k.item").open(encoding="utf-8") as handle:
        header, *lines = handle.readlines()
    (out / "ml-100k.item").write_text(
        header + "".join(line for line in lines if line.split("\t")[0] in items), encoding="utf-8"
    )


if __name__ == "__main__":
    share = Path(sys.argv[1])
    for make in (amazon2018, amazon2014, amazon2023, sequence_file, tables, recbole):
        make(share)
