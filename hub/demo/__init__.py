"""``hub demo``: the whole loop on the embedded default, with a simulated debtor side."""
