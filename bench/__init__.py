"""The side-by-side benchmark (scripts/bench): every contender on the same pre-produced data."""
