"""Matplotlib figures written as PNG files (Agg backend, no display needed)."""
