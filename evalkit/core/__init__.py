"""Records and primitives every part of evalkit shares (seeded draws, …)."""
