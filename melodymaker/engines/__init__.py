"""Generation modes: the interface in base.py, one adapter module per mode."""
