"""The web edge: JSON stats API, dashboard page, health and metrics."""
