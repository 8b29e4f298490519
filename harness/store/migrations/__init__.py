"""Alembic migrations of the results store, shipped with the package and configured in code (no alembic.ini)."""
