"""Short policy labels of the scoreboard (``dutch``, ``breaker``, ``dynLTV``…); no heavy imports.

The command line accepts these labels wherever it takes a policy name
(:mod:`pipelines.cli.names`), so a name read off the scoreboard can be typed back.
"""

from __future__ import annotations

#: Policy name → the scoreboard's short label, in the scoreboard's column order.
SHORT_LABELS: dict[str, str] = {
    "instant": "instant",
    "dutch_auction": "dutch",
    "circuit_breaker": "breaker",
    "liquidity_buffer": "buffer",
    "batch": "batch",
    "staged": "staged",
    "dynamic_ltv": "dynLTV",
    "dynamic_ltv+dutch_auction": "dynLTV+dutch",
}
