"""KDD Cup 99 facts shared by the data generator and the Spark analysis (which ships this module to Dataproc).

Labels are written with a trailing dot in the data files (``smurf.``); the mapping is keyed without it.
"""

from __future__ import annotations

# The standard mapping of the KDD Cup 99 labels to the four attack categories.
ATTACK_CATEGORY = {
    "normal": "normal",
    **dict.fromkeys(["back", "land", "neptune", "pod", "smurf", "teardrop"], "dos"),
    **dict.fromkeys(["ipsweep", "nmap", "portsweep", "satan"], "probe"),
    **dict.fromkeys(
        ["ftp_write", "guess_passwd", "imap", "multihop", "phf", "spy", "warezclient", "warezmaster"], "r2l"
    ),
    **dict.fromkeys(["buffer_overflow", "loadmodule", "perl", "rootkit"], "u2r"),
}
NORMAL_LABEL = "normal."
# How a line can fail to be a connection record; the generator spoils lines in these ways.
MALFORMED_KINDS = ("wrong_column_count", "non_numeric", "empty_field", "out_of_range")
UNKNOWN_CATEGORY = "unknown"  # a label outside the standard 23 (the KDD test set has more)
