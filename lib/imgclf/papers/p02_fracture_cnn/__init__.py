"""Paper 2 (Tarasenko, Yakimov & Soloviev): a plain CNN that tells fractured from intact bones.

``config`` holds the paper's settings (and the smoke diff), ``published`` the paper's numbers,
``pipeline`` the steps of notebook 02 in the paper's order.
"""

from . import config, pipeline, published

NOTEBOOK = "02_fracture_cnn"

TITLE = "Fracture X-ray CNN (Tarasenko, Yakimov & Soloviev)"

__all__ = ["NOTEBOOK", "TITLE", "config", "pipeline", "published"]
