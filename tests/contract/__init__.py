"""Contract suites: one per seam, run over every implementation of it (STYLE habit 4)."""
