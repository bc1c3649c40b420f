"""Promotion: from a failed redundant part, switch or primary to a promoted standby, safely.

``policy`` decides (pure, clock passed in), ``actions`` executes (one small executor per
mechanism), ``fence`` confirms a peer is down before it is replaced, ``signing`` signs and
verifies commands, ``settings`` parses ``[promotion]``, ``runtime`` wires them into the
agent, and ``cli`` is ``hotspare promote|demote|failback|keygen``. See docs/promotion.md.
"""
