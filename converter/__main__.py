"""``python -m converter`` == ``mconv``."""
from .cli import run

run()
