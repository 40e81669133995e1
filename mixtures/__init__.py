"""Mixture specs over label/source pools, LSBS presets and their planning (design §5)."""
