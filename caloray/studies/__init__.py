"""End-to-end scientific studies (Ray + MLflow at the edges): calibration, amplification, super-resolution."""
