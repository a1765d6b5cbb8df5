"""Rentals for the recommendation lab: accommodations and the ratings users gave them.

Both files are CSV without a header, in the lab's column order (``accommodations.csv``:
id,title,location,price,rooms,rating,type; ``ratings.csv``: userId,accoId,rating). Users have tastes
(a favourite type, a budget, cities they like) and rate what fits them higher, so ALS has structure to
learn; each user rates only a fraction of the accommodations, leaving unseen ones to recommend.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ADJECTIVES = (
    "Comfy",
    "Cozy",
    "Quiet",
    "Calm",
    "Sunny",
    "Charming",
    "Agreable",
    "Spacious",
    "Rustic",
    "Modern",
)
NOUNS = {
    "cottage": ("Chalet", "Hut", "Cottage"),
    "house": ("House", "Place", "Home"),
    "castle": ("Castle", "Fortress", "Keep"),
    "mansion": ("Mansion", "Manor", "Villa"),
}
CITIES = (
    "Vancouver",
    "London",
    "Paris",
    "Dublin",
    "Melbourne",
    "Auckland",
    "San Francisco",
    "NYC",
    "Seattle",
    "Tokyo",
)
BASE_PRICE = {"cottage": 50, "house": 90, "castle": 300, "mansion": 200}


@dataclass
class RentalsManifest:
    accommodations_path: str
    ratings_path: str
    accommodations: int
    users: int
    ratings: int


def write_rentals(
    folder: str | Path, accommodations: int = 99, users: int = 25, rated_share: float = 0.5, seed: int = 42
) -> RentalsManifest:
    """Write ``accommodations.csv`` and ``ratings.csv`` into ``folder``."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    types = list(NOUNS)
    items = []
    for acco_id in range(1, accommodations + 1):
        kind = types[int(rng.integers(len(types)))]
        rooms = int(rng.integers(1, 9))
        price = int(BASE_PRICE[kind] + 10 * rooms + rng.integers(0, 40))
        title = f"{rng.choice(ADJECTIVES)} {rng.choice(ADJECTIVES)} {rng.choice(NOUNS[kind])}"
        items.append((acco_id, title, str(rng.choice(CITIES)), price, rooms, kind))

    ratings = []
    for user_id in range(users):
        favourite = types[int(rng.integers(len(types)))]
        budget = float(rng.uniform(80, 350))
        liked_cities = set(rng.choice(CITIES, size=3, replace=False).tolist())
        for acco_id, _, city, price, _, kind in items:
            if rng.random() >= rated_share:
                continue
            score = 2.0 + 1.5 * (kind == favourite) + 1.0 * (city in liked_cities) - 1.0 * (price > budget)
            ratings.append((user_id, acco_id, int(np.clip(round(score + rng.normal(0, 0.5)), 1, 5))))

    average = {}
    for _, acco_id, rating in ratings:
        average.setdefault(acco_id, []).append(rating)
    accommodations_path, ratings_path = folder / "accommodations.csv", folder / "ratings.csv"
    with open(accommodations_path, "w", newline="") as out:
        writer = csv.writer(out)
        for acco_id, title, city, price, rooms, kind in items:
            mean = round(float(np.mean(average[acco_id])), 1) if acco_id in average else ""
            writer.writerow((acco_id, title, city, price, rooms, mean, kind))
    with open(ratings_path, "w", newline="") as out:
        csv.writer(out).writerows(ratings)
    return RentalsManifest(str(accommodations_path), str(ratings_path), accommodations, users, len(ratings))
