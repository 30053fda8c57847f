"""Paper 1: G. Ososkov and P. Goncharov, *Two-Stage Approach to Image Classification by Deep Neural
Networks*: a tied autoencoder's 64-d codes, then a perceptron, a DNN and a DBN; a denoising AE;
a convolutional AE and a 1-D CNN for electrophoresis spectra.

``config`` (the settings), ``published`` (the paper's tables), ``pipeline`` (the steps).
"""

from . import config, pipeline, published  # noqa: F401

NOTEBOOK = "01_two_stage_autoencoder"
TITLE = "Two-stage classification (Ososkov & Goncharov)"
