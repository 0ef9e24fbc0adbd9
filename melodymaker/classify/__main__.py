"""`python -m melodymaker.classify train|predict`."""
import sys

from .training import main

sys.exit(main())
