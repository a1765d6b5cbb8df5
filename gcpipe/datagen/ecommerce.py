"""E-commerce web sessions like the Google Analytics sample (``ga_sessions``), as JSON lines.

Each visitor has a traffic channel, a device, a country and a hidden engagement level. Their first
visit may bounce or go down the shop's funnel (product list, detail, add to cart, checkout, purchase);
some come back, and whether a return visit buys depends on what the first visit showed: how far down
the funnel it went, time on site, bounce, device, country and channel. That is the signal the BigQuery
ML purchase model (label ``will_buy_on_return_visit``) learns, as in the e-commerce lab.

Rows follow ``sql/schemas/ga_sessions.json``: GA's conventions included (NULL rather than 0 in
``totals.bounces``, ``totals.newVisits`` and ``totals.transactions``; money in micros).
"""

from __future__ import annotations

import functools
import gzip
import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from gcpipe.core.ui import progress

COUNTRIES = (  # (country, continent, subContinent, city, weight)
    ("United States", "Americas", "Northern America", "Mountain View", 0.40),
    ("India", "Asia", "Southern Asia", "Bengaluru", 0.07),
    ("United Kingdom", "Europe", "Northern Europe", "London", 0.05),
    ("Canada", "Americas", "Northern America", "Toronto", 0.04),
    ("Germany", "Europe", "Western Europe", "Berlin", 0.03),
    ("Japan", "Asia", "Eastern Asia", "Tokyo", 0.03),
    ("France", "Europe", "Western Europe", "Paris", 0.03),
    ("Brazil", "Americas", "South America", "Sao Paulo", 0.03),
    ("Vietnam", "Asia", "Southeast Asia", "Ho Chi Minh City", 0.03),
    ("Turkey", "Asia", "Western Asia", "Istanbul", 0.03),
    ("Australia", "Oceania", "Australasia", "Sydney", 0.02),
    ("Mexico", "Americas", "Central America", "Mexico City", 0.02),
    ("Netherlands", "Europe", "Western Europe", "Amsterdam", 0.02),
    ("Spain", "Europe", "Southern Europe", "Madrid", 0.02),
    ("Other", "(not set)", "(not set)", "not available in demo dataset", 0.18),
)
CHANNELS = (  # (channelGrouping, source, medium, weight, effect on buying back)
    ("Organic Search", "google", "organic", 0.42, 0.0),
    ("Social", "youtube.com", "referral", 0.25, -1.2),
    ("Direct", "(direct)", "(none)", 0.16, 0.3),
    ("Referral", "mall.googleplex.com", "referral", 0.11, 1.0),
    ("Paid Search", "google", "cpc", 0.03, 0.2),
    ("Affiliates", "Partners", "affiliate", 0.02, -0.5),
    ("Display", "dfa", "cpm", 0.01, 0.0),
)
DEVICES = (  # (deviceCategory, browser, operatingSystem, isMobile, weight, effect)
    ("desktop", "Chrome", "Macintosh", False, 0.40, 0.5),
    ("desktop", "Chrome", "Windows", False, 0.20, 0.5),
    ("desktop", "Firefox", "Linux", False, 0.05, 0.5),
    ("mobile", "Safari", "iOS", True, 0.15, -0.4),
    ("mobile", "Chrome", "Android", True, 0.15, -0.4),
    ("tablet", "Safari", "iOS", True, 0.05, -0.2),
)
PRODUCTS = (  # (SKU, name, category, price in USD)
    ("GGOEGAAX0104", "Google Men's 100% Cotton Short Sleeve Hero Tee White", "Apparel", 16.99),
    ("GGOEGBRJ037299", "Google Zipper-front Sports Bag", "Bags", 19.99),
    ("GGOEGOAQ012899", "Google Ballpoint Pen", "Office", 1.99),
    ("GGOEYDHJ056099", "YouTube Twill Cap", "Headgear", 10.79),
    ("GGOEGDHC018299", "Google 22 oz Water Bottle", "Drinkware", 2.99),
    ("GGOENEBQ078999", "Nest Cam Outdoor Security Camera", "Nest-USA", 199.0),
    ("GGOEAFKQ020599", "Android Sticker Sheet Ride", "Accessories", 2.99),
    ("GGOEGEVA022399", "Google Laptop and Cell Phone Stickers", "Accessories", 1.99),
)
# eCommerceAction.action_type of each funnel stage, and the page it happens on.
FUNNEL = (
    ("0", "/home"),
    ("1", "/google+redesign/apparel"),
    ("2", "/google+redesign/apparel/quickview"),
    ("3", "/basket.html"),
    ("5", "/payment.html"),
    ("6", "/ordercompleted.html"),
)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@dataclass
class SessionsManifest:
    path: str
    seed: int
    visitors: int
    sessions: int
    buyers_on_return: int  # visitors with a transaction on a visit after their first


class _Visitor:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.id = str(10**18 + int(rng.integers(0, 9 * 10**18 - 1)))
        self.country = COUNTRIES[rng.choice(len(COUNTRIES), p=_weights(COUNTRIES, 4))]
        self.channel = CHANNELS[rng.choice(len(CHANNELS), p=_weights(CHANNELS, 3))]
        self.device = DEVICES[rng.choice(len(DEVICES), p=_weights(DEVICES, 4))]
        self.engagement = float(rng.normal())

    def session(self, start: datetime, visit_number: int, buy: bool | None) -> tuple[dict, int, int]:
        """One session; returns (row, funnel stage reached, time on site)."""
        rng = self.rng
        first = visit_number == 1
        bounce = first and rng.random() < _sigmoid(-0.4 - 1.1 * self.engagement + (self.device[5] < 0) * 0.5)
        if bounce:
            stage, pageviews = 0, 1
        else:
            stage = 0
            for _ in range(1, len(FUNNEL) - 1):
                if rng.random() < _sigmoid(0.9 * self.engagement - 0.2 + 0.3 * stage):
                    stage += 1
                else:
                    break
            if buy:
                stage = len(FUNNEL) - 1
            elif buy is None and stage == len(FUNNEL) - 2 and rng.random() < 0.25:
                stage += 1
            pageviews = int(stage + 1 + rng.poisson(math.exp(1.0 + 0.4 * self.engagement)))
        time_on_site = 0 if bounce else int(pageviews * rng.lognormal(3.6, 0.6))
        hits, revenue = self._hits(start, pageviews, stage, time_on_site)
        bought = stage == len(FUNNEL) - 1
        row = {
            "fullVisitorId": self.id,
            "visitId": int(start.timestamp()),
            "visitNumber": visit_number,
            "visitStartTime": int(start.timestamp()),
            "date": start.date().isoformat(),
            "channelGrouping": self.channel[0],
            "totals": {
                "visits": 1,
                "hits": len(hits),
                "pageviews": pageviews,
                "timeOnSite": time_on_site or None,
                "bounces": 1 if bounce else None,
                "transactions": 1 if bought else None,
                "transactionRevenue": revenue if bought else None,
                "newVisits": 1 if first else None,
            },
            "trafficSource": {
                "source": self.channel[1],
                "medium": self.channel[2],
                "campaign": "(not set)",
                "referralPath": None,
            },
            "device": {
                "browser": self.device[1],
                "operatingSystem": self.device[2],
                "isMobile": self.device[3],
                "deviceCategory": self.device[0],
            },
            "geoNetwork": {
                "continent": self.country[1],
                "subContinent": self.country[2],
                "country": self.country[0],
                "city": self.country[3],
            },
            "hits": hits,
        }
        return row, stage, time_on_site

    def _hits(self, start: datetime, pageviews: int, stage: int, time_on_site: int) -> tuple[list[dict], int]:
        rng = self.rng
        # Browsing pages first, then one page per funnel stage reached, in order.
        stages = [0] * (pageviews - stage) + list(range(1, stage + 1))
        moments = np.sort(rng.uniform(0, max(time_on_site, 1) * 1000, len(stages))).astype(int)
        moments[0] = 0
        basket = [PRODUCTS[i] for i in rng.choice(len(PRODUCTS), size=int(rng.integers(1, 4)), replace=False)]
        quantities = [int(rng.integers(1, 4)) for _ in basket]
        revenue = sum(round(p[3] * 1e6) * q for p, q in zip(basket, quantities, strict=True))
        hits = []
        for number, (level, ms) in enumerate(zip(stages, moments.tolist(), strict=True), start=1):
            action, path = FUNNEL[level]
            moment = start + timedelta(milliseconds=ms)
            products = []
            if level >= 2:
                products = [
                    {
                        "productSKU": p[0],
                        "v2ProductName": p[1],
                        "v2ProductCategory": p[2],
                        "productPrice": round(p[3] * 1e6),
                        "productQuantity": q if level >= 3 else None,
                        "productRevenue": round(p[3] * 1e6) * q if level == 5 else None,
                        "isImpression": False,
                    }
                    for p, q in zip(basket, quantities, strict=True)
                ]
            purchase = level == len(FUNNEL) - 1
            hits.append(
                {
                    "hitNumber": number,
                    "time": ms,
                    "hour": moment.hour,
                    "minute": moment.minute,
                    "type": "TRANSACTION" if purchase else "PAGE",
                    "isEntrance": True if number == 1 else None,
                    "isExit": True if number == len(stages) else None,
                    "page": {
                        "pagePath": path,
                        "pageTitle": path.strip("/").split("/")[-1] or "Home",
                        "hostname": "shop.googlemerchandisestore.com",
                    },
                    "eCommerceAction": {"action_type": action, "step": 1},
                    "product": products,
                    "transaction": {
                        "transactionId": f"ORD{self.id[-8:]}{number}",
                        "transactionRevenue": revenue,
                    }
                    if purchase
                    else None,
                }
            )
        return hits, revenue

    def buys_back(self, stage: int, time_on_site: int, bounced: bool) -> bool:
        logit = (
            -3.6
            + 1.4 * (stage >= 3)
            + 1.2 * (stage >= 4)
            + 0.0025 * min(time_on_site, 1200)
            - 1.5 * bounced
            + self.device[5]
            + self.channel[4]
            + 0.6 * (self.country[0] == "United States")
            + 0.3 * self.engagement
        )
        return bool(self.rng.random() < _sigmoid(logit))


def _weights(rows: tuple, column: int) -> np.ndarray:
    weights = np.array([row[column] for row in rows], dtype=float)
    return weights / weights.sum()


def generate_sessions(visitors: int, seed: int = 42, start: date = date(2016, 8, 1), days: int = 365):
    """Yield session rows, visitor by visitor; the dates span ``days`` days from ``start``."""
    rng = np.random.default_rng(seed)
    origin = datetime(start.year, start.month, start.day, tzinfo=UTC)
    end = origin + timedelta(days=days)
    for _ in range(visitors):
        visitor = _Visitor(rng)
        first_at = origin + timedelta(seconds=float(rng.uniform(0, days * 86_400)))
        row, stage, time_on_site = visitor.session(first_at, 1, buy=None)
        yield row
        returns = int(rng.poisson(math.exp(-0.9 + 0.4 * visitor.engagement)))
        buy_visit = (
            int(rng.integers(0, returns))
            if returns and visitor.buys_back(stage, time_on_site, stage == 0)
            else -1
        )
        moment = first_at
        for number in range(returns):
            moment += timedelta(days=float(rng.exponential(20)), seconds=float(rng.uniform(0, 3600)))
            if moment >= end:
                break
            yield visitor.session(moment, number + 2, buy=number == buy_visit)[0]


def write_sessions(
    path: str | Path, visitors: int, seed: int = 42, start: date = date(2016, 8, 1), days: int = 365
) -> SessionsManifest:
    """Write the sessions of ``visitors`` visitors as JSON lines (gzip if the name ends in .gz)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = functools.partial(gzip.open, compresslevel=5) if path.suffix == ".gz" else open
    sessions, buyers, last_visitor = 0, set(), None
    with opener(path, "wt") as out, progress(f"sessions -> {path.name}", visitors) as advance:
        for row in generate_sessions(visitors, seed, start, days):
            out.write(json.dumps(row, separators=(",", ":")) + "\n")
            sessions += 1
            if row["totals"]["transactions"] and row["visitNumber"] > 1:
                buyers.add(row["fullVisitorId"])
            if row["fullVisitorId"] != last_visitor:
                last_visitor = row["fullVisitorId"]
                advance(1)
    return SessionsManifest(str(path), seed, visitors, sessions, len(buyers))
