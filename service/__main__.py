"""``python -m service``: run the server (same options as ``modelshelf serve``)."""

from service.cli import main

main()
