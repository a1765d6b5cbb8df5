"""Geohash cells: the pickup areas of the heat map (precision 6 is about 1.2 km by 0.6 km in New York)."""

from __future__ import annotations

_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"  # pragma: allowlist secret (the geohash alphabet)


def encode(latitude: float, longitude: float, precision: int = 6) -> str:
    lat, lon = [-90.0, 90.0], [-180.0, 180.0]
    chars, bits, value, even = [], 0, 0, True
    while len(chars) < precision:
        interval, x = (lon, longitude) if even else (lat, latitude)
        middle = (interval[0] + interval[1]) / 2
        value <<= 1
        if x >= middle:
            value |= 1
            interval[0] = middle
        else:
            interval[1] = middle
        even = not even
        bits += 1
        if bits == 5:
            chars.append(_BASE32[value])
            bits, value = 0, 0
    return "".join(chars)


def center(cell: str) -> tuple[float, float]:
    """(latitude, longitude) of the cell's centre."""
    lat, lon = [-90.0, 90.0], [-180.0, 180.0]
    even = True
    for char in cell:
        value = _BASE32.index(char)
        for shift in range(4, -1, -1):
            interval = lon if even else lat
            middle = (interval[0] + interval[1]) / 2
            interval[0 if (value >> shift) & 1 else 1] = middle
            even = not even
    return (lat[0] + lat[1]) / 2, (lon[0] + lon[1]) / 2
