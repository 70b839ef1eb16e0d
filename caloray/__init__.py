"""caloray."""
