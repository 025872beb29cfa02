"""``python -m modelshelf.service``: run the server (same options as ``modelshelf serve``)."""

from modelshelf.service.cli import main

main()
