"""MelodyMaker: genre music generation, classification and recommendation."""
__version__ = "0.1.0"
