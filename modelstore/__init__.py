"""The model layer: what a TF.js model is, stored as versions over any backend."""

from modelshelf.modelstore.shelf import ModelRef, Shelf, copy_version
from modelshelf.modelstore.store import ModelPage, ModelStore, WeightUpload

__all__ = ["ModelPage", "ModelRef", "ModelStore", "Shelf", "WeightUpload", "copy_version"]
