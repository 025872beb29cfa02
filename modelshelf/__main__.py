"""``python -m modelshelf``: the same as the ``modelshelf`` command."""

from modelshelf.cli import main

main()
