"""Migration scripts, one per schema change, oldest first (``v0001_…``)."""
