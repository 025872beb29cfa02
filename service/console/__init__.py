"""The web console: server-rendered pages over the same stores the API serves.

Browsing is plain HTML and works without scripts; actions (upload, copy, remove, aliases)
are scripts calling the public API, so the console can do nothing a client cannot.
"""

from modelshelf.service.console.pages import (
    ASSETS_PATH,
    CONSOLE_PREFIX,
    assets,
    is_console_path,
    router,
)

__all__ = ["ASSETS_PATH", "CONSOLE_PREFIX", "assets", "is_console_path", "router"]
