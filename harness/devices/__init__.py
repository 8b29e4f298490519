"""Devices under test: the Aer stand-in, a lab bench, and a recorded session."""
