"""Stream processors, one module per input topic."""
