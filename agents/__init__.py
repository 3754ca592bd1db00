"""The agents: orders.py declares the one agent and runs admit -> prepare -> commit."""
