"""``modelshelf serve`` with settings it must refuse: what the person at the terminal reads."""

from __future__ import annotations

import os
import subprocess
import sys


def refused_startup(settings_env: dict[str, str], unset: tuple[str, ...] = ()) -> str:
    """Run ``modelshelf serve`` with these settings; it must refuse without a traceback."""
    env = {**os.environ, **settings_env}
    for name in unset:
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "modelshelf", "serve", "--port", "9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr
