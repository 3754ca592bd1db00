"""State: table definitions and the pure aggregation logic they apply.

Note: PyTables also installs a top-level package named ``tables``; keep it out of the venv.
"""
