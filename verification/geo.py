"""A small built-in gazetteer for impossible-travel checks: no network, no data files.

City coordinates are used when the sign-in names a known city; otherwise the country's rough centre,
with an uncertainty margin (a country is not a point: London to Edinburgh is 530 km, both "GB").
Approximate to a few kilometres for cities, which is plenty for a 900 km/h threshold.
"""

from __future__ import annotations

import math

from verification.names import normalize

EARTH_RADIUS_KM = 6371.0
CITY_MARGIN_KM = 50.0  # IP geolocation of a city is itself approximate

# ISO 3166 alpha-2 -> (lat, lon, margin_km): a rough centre and how far the country extends from it.
COUNTRIES: dict[str, tuple[float, float, float]] = {
    "GB": (54.0, -2.0, 600), "IE": (53.2, -8.0, 250), "FR": (46.6, 2.4, 600), "DE": (51.1, 10.4, 450),
    "NL": (52.2, 5.3, 150), "BE": (50.6, 4.6, 150), "LU": (49.8, 6.1, 50), "CH": (46.8, 8.2, 200),
    "AT": (47.6, 14.1, 300), "ES": (40.2, -3.6, 600), "PT": (39.6, -8.0, 350), "IT": (42.8, 12.6, 600),
    "DK": (56.0, 10.0, 250), "NO": (64.5, 12.0, 900), "SE": (62.0, 15.0, 800), "FI": (64.0, 26.0, 600),
    "IS": (64.9, -18.6, 250), "PL": (52.0, 19.1, 350), "CZ": (49.8, 15.5, 250), "SK": (48.7, 19.7, 200),
    "HU": (47.2, 19.4, 250), "RO": (45.9, 24.9, 350), "BG": (42.7, 25.3, 250), "GR": (39.1, 22.0, 400),
    "TR": (39.0, 35.2, 800), "UA": (49.0, 31.4, 650), "BY": (53.7, 28.0, 350), "RU": (61.5, 100.0, 4000),
    "EE": (58.6, 25.0, 200), "LV": (56.9, 24.6, 200), "LT": (55.2, 23.9, 200), "RS": (44.0, 20.9, 250),
    "HR": (45.1, 15.2, 300), "SI": (46.1, 14.8, 150), "BA": (43.9, 17.7, 200), "AL": (41.2, 20.2, 150),
    "CY": (35.1, 33.4, 100), "MT": (35.9, 14.4, 30), "IL": (31.0, 34.9, 250), "AE": (24.0, 54.0, 300),
    "SA": (24.0, 45.0, 1100), "QA": (25.3, 51.2, 100), "EG": (26.8, 30.8, 700), "MA": (31.8, -7.1, 600),
    "NG": (9.1, 8.7, 600), "GH": (7.9, -1.0, 350), "KE": (0.0, 37.9, 500), "ZA": (-30.6, 22.9, 900),
    "ET": (9.1, 40.5, 650), "TZ": (-6.4, 34.9, 600), "IN": (21.0, 78.0, 1700), "PK": (30.4, 69.3, 900),
    "BD": (23.7, 90.4, 350), "LK": (7.9, 80.8, 250), "CN": (35.9, 104.2, 2500), "HK": (22.3, 114.2, 30),
    "TW": (23.7, 121.0, 250), "JP": (36.2, 138.3, 1200), "KR": (36.5, 127.9, 300), "SG": (1.35, 103.8, 30),
    "MY": (4.2, 102.0, 900), "TH": (15.9, 101.0, 800), "VN": (14.1, 108.3, 900), "PH": (12.9, 121.8, 900),
    "ID": (-2.5, 118.0, 2500), "AU": (-25.3, 133.8, 2500), "NZ": (-41.0, 174.0, 800), "US": (39.8, -98.6, 2800),
    "CA": (56.1, -106.3, 2800), "MX": (23.6, -102.6, 1500), "BR": (-14.2, -51.9, 2300), "AR": (-38.4, -63.6, 1800),
    "CL": (-35.7, -71.5, 2000), "CO": (4.6, -74.3, 900), "PE": (-9.2, -75.0, 1000), "VE": (6.4, -66.6, 800),
    "UY": (-32.5, -55.8, 300), "IR": (32.4, 53.7, 1100), "IQ": (33.2, 43.7, 500), "KZ": (48.0, 66.9, 1500),
}

# Normalised city name -> (lat, lon).
CITIES: dict[str, tuple[float, float]] = {
    "london": (51.51, -0.13), "manchester": (53.48, -2.24), "birmingham": (52.49, -1.89),
    "edinburgh": (55.95, -3.19), "glasgow": (55.86, -4.25), "leeds": (53.80, -1.55), "bristol": (51.45, -2.59),
    "cardiff": (51.48, -3.18), "belfast": (54.60, -5.93), "dublin": (53.35, -6.26), "paris": (48.86, 2.35),
    "lyon": (45.76, 4.84), "berlin": (52.52, 13.40), "munich": (48.14, 11.58), "frankfurt": (50.11, 8.68),
    "hamburg": (53.55, 9.99), "amsterdam": (52.37, 4.90), "brussels": (50.85, 4.35), "zurich": (47.38, 8.54),
    "geneva": (46.20, 6.14), "vienna": (48.21, 16.37), "madrid": (40.42, -3.70), "barcelona": (41.39, 2.17),
    "lisbon": (38.72, -9.14), "rome": (41.90, 12.50), "milan": (45.46, 9.19), "copenhagen": (55.68, 12.57),
    "oslo": (59.91, 10.75), "stockholm": (59.33, 18.07), "helsinki": (60.17, 24.94), "warsaw": (52.23, 21.01),
    "prague": (50.08, 14.44), "budapest": (47.50, 19.04), "bucharest": (44.43, 26.10), "athens": (37.98, 23.73),
    "istanbul": (41.01, 28.98), "kyiv": (50.45, 30.52), "moscow": (55.76, 37.62), "tel aviv": (32.09, 34.78),
    "dubai": (25.20, 55.27), "cairo": (30.04, 31.24), "lagos": (6.52, 3.38), "nairobi": (-1.29, 36.82),
    "johannesburg": (-26.20, 28.05), "cape town": (-33.92, 18.42), "mumbai": (19.08, 72.88),
    "bangalore": (12.97, 77.59), "bengaluru": (12.97, 77.59), "new delhi": (28.61, 77.21), "delhi": (28.70, 77.10),
    "hyderabad": (17.39, 78.49), "chennai": (13.08, 80.27), "singapore": (1.35, 103.82), "hong kong": (22.32, 114.17),
    "shanghai": (31.23, 121.47), "beijing": (39.90, 116.41), "tokyo": (35.68, 139.69), "seoul": (37.57, 126.98),
    "sydney": (-33.87, 151.21), "melbourne": (-37.81, 144.96), "auckland": (-36.85, 174.76),
    "new york": (40.71, -74.01), "boston": (42.36, -71.06), "washington": (38.91, -77.04), "chicago": (41.88, -87.63),
    "atlanta": (33.75, -84.39), "miami": (25.76, -80.19), "dallas": (32.78, -96.80), "houston": (29.76, -95.37),
    "denver": (39.74, -104.99), "seattle": (47.61, -122.33), "redmond": (47.67, -122.12),
    "san francisco": (37.77, -122.42), "los angeles": (34.05, -118.24), "toronto": (43.65, -79.38),
    "vancouver": (49.28, -123.12), "montreal": (45.50, -73.57), "mexico city": (19.43, -99.13),
    "sao paulo": (-23.55, -46.63), "rio de janeiro": (-22.91, -43.17), "buenos aires": (-34.60, -58.38),
    "santiago": (-33.45, -70.67), "bogota": (4.71, -74.07), "lima": (-12.05, -77.04),
}


def locate(city: str | None, country_code: str | None, lat: float | None = None,
           lon: float | None = None) -> tuple[float, float, float] | None:
    """(lat, lon, uncertainty_km) for a sign-in, or None when nothing is known."""
    if lat is not None and lon is not None:
        return lat, lon, CITY_MARGIN_KM
    if city and normalize(city) in CITIES:
        c_lat, c_lon = CITIES[normalize(city)]
        return c_lat, c_lon, CITY_MARGIN_KM
    if country_code and country_code.upper() in COUNTRIES:
        return COUNTRIES[country_code.upper()]
    return None


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))
