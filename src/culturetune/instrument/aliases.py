"""Other names of the countries in Hofstede's table (data only): common names, ISO 3166 alpha-3
codes that differ from the table's own codes (only where they do not clash with one of the
table's codes) and the names CulturalBench uses, each mapped to the table's code. Table names
and codes resolve by themselves (:func:`culturetune.instrument.targets.lookup_country`).
"""

# fmt: off
COUNTRY_ALIASES: dict[str, str] = {
    # United States
    "USA": "USA", "US": "USA", "U.S.": "USA", "United States": "USA",
    "United States of America": "USA", "America": "USA",
    # United Kingdom
    "UK": "GBR", "U.K.": "GBR", "United Kingdom": "GBR", "Britain": "GBR", "England": "GBR",
    "United Kingdom of Great Britain and Northern Ireland": "GBR",
    # China and neighbours
    "PRC": "CHI", "CHN": "CHI", "People's Republic of China": "CHI", "Mainland China": "CHI",
    "Hong Kong SAR": "HOK", "HKG": "HOK", "Hongkong": "HOK",
    "TWN": "TAI", "Chinese Taipei": "TAI", "Republic of China": "TAI",
    "South Korea": "KOR", "Korea": "KOR", "Republic of Korea": "KOR", "Korea, Republic of": "KOR",
    "ROK": "KOR",
    # Europe
    "Germany West": "GER", "West Germany": "GER", "DEU": "GER", "Deutschland": "GER",
    "East Germany": "GEE", "GDR": "GEE",
    "Czech Republic": "CZE", "Czechia": "CZE",
    "Slovakia": "SLK", "Slovak Republic": "SLK", "SVK": "SLK",
    "SVN": "SLV",
    "Kyrgyzstan": "KYR", "Kyrgyz Republic": "KYR", "KGZ": "KYR",
    "Macedonia": "MAC", "North Macedonia": "MAC", "Republic of Macedonia": "MAC", "MKD": "MAC",
    "Bosnia and Herzegovina": "BOS", "Bosnia-Herzegovina": "BOS", "BIH": "BOS",
    "Holland": "NET", "The Netherlands": "NET", "NLD": "NET",
    "Belgium Dutch": "BEN", "Belgium Flemish": "BEN", "Belgium Netherlands": "BEN",
    "Flanders": "BEN", "Wallonia": "BEF",
    "Switzerland German-speaking": "SWG", "German Switzerland": "SWG",
    "Switzerland French-speaking": "SWF", "French Switzerland": "SWF", "CHE": "SWI",
    "Russian Federation": "RUS", "Türkiye": "TUR", "Turkiye": "TUR",
    "Moldova, Republic of": "MOL", "Republic of Moldova": "MOL", "MDA": "MOL",
    "MNE": "MNG", "SRB": "SER", "ROU": "ROM", "HRV": "CRO", "BGR": "BUL", "DNK": "DEN",
    "GRC": "GRE", "ISL": "ICE", "IRL": "IRE", "LVA": "LAT", "LTU": "LIT", "PRT": "POR",
    "ESP": "SPA",
    # Americas
    "Quebec": "CAF", "French Canada": "CAF", "Canada Quebec": "CAF",
    "Dominican Republic": "DOM", "Trinidad": "TRI", "TTO": "TRI", "CRI": "COS", "ECU": "ECA",
    "GTM": "GUA", "PRI": "PUE", "URY": "URU",
    # Asia, Middle East, Africa
    "Viet Nam": "VIE", "VNM": "VIE", "Iran, Islamic Republic of": "IRA",
    "Islamic Republic of Iran": "IRA", "Persia": "IRA", "IRN": "IRA",
    "Saudi": "SAU", "KSA": "SAU", "Kingdom of Saudi Arabia": "SAU",
    "Arab World": "ARA", "Arab Countries": "ARA", "Arab States": "ARA",
    "Bharat": "IND", "IDN": "IDO", "BGD": "BAN", "MYS": "MAL", "PHL": "PHI", "SGP": "SIN",
    "AUS": "AUL", "NGA": "NIG", "ZAF": "SAF", "RSA": "SAF", "ZMB": "ZAM", "ZWE": "ZIM",
    "TZA": "TAN", "MAR": "MOR", "DZA": "ALG", "East Africa": "AFE", "West Africa": "AFW",
    "Burkina": "BUF", "BFA": "BUF",
}
# fmt: on
