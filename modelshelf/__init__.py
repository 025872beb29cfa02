"""modelshelf: a self-hosted model store that speaks TensorFlow.js's save/load protocol."""

__version__ = "0.1.0"
