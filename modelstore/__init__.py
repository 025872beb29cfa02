"""The model layer: what a TF.js model is, stored as versions over any backend."""

from modelshelf.backends.protocol import ObjectStream  # what open_* return, for the service
from modelshelf.modelstore.shelf import ModelRef, Shelf, copy_version
from modelshelf.modelstore.store import ModelPage, ModelStore, WeightUpload
from modelshelf.modelstore.views import ViewOptions, Views

__all__ = [
    "ModelPage",
    "ModelRef",
    "ModelStore",
    "ObjectStream",
    "Shelf",
    "ViewOptions",
    "Views",
    "WeightUpload",
    "copy_version",
]
