"""The wheel is one top-level package, and the SDK runs without the server extra."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
SERVER_EXTRA_MODULES = ["fastapi", "starlette", "uvicorn", "boto3", "aiofiles", "msgspec"]
SERVER_EXTRA_MODULES += ["python_multipart", "zipstream"]
# Makes every module of the server extra unimportable, as in a venv with the SDK alone.
WITHOUT_SERVER_EXTRA = "import sys\n" + "".join(
    f"sys.modules[{name!r}] = None\n" for name in [*SERVER_EXTRA_MODULES, "pydantic_settings"]
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), "."],
        cwd=REPOSITORY,
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("modelshelf-*.whl")
    return built


def test_the_wheel_installs_one_top_level_package_with_py_typed(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {
        name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")
    }
    assert top_level == {"modelshelf"}
    for module in (
        "service/app.py",
        "backends/sqlite.py",
        "modelstore/store.py",
        "schemas/errors.py",
    ):
        assert f"modelshelf/{module}" in names
    assert "modelshelf/py.typed" in names


def test_the_wheel_carries_the_console_templates_and_assets(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    console = Path(__file__).parents[1] / "service" / "console"
    shipped = [f"templates/{p.name}" for p in (console / "templates").iterdir()]
    shipped += [f"static/{p.name}" for p in (console / "static").iterdir()]
    assert len(shipped) > 8
    for item in shipped:
        assert f"modelshelf/service/console/{item}" in names


def test_the_sdk_needs_only_httpx_numpy_and_pydantic(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    (metadata,) = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
    requires = Parser().parsestr(archive.read(metadata).decode()).get_all("Requires-Dist")
    plain = sorted(req.split(">")[0].split("=")[0] for req in requires if "extra ==" not in req)
    assert plain == ["httpx", "numpy", "pydantic"]
    server = {re.split(r"[<>=!~;\[ ]", req)[0] for req in requires if 'extra == "server"' in req}
    assert {"fastapi", "uvicorn", "boto3", "aiofiles", "pydantic-settings"} <= server
    assert {"python-multipart", "zipstream-ng"} <= server
    assert {"jinja2", "prometheus-client", "fastapi-offline"} <= server
    cli = {re.split(r"[<>=!~;\[ ]", req)[0] for req in requires if 'extra == "cli"' in req}
    assert cli == {"rich"}  # progress bars and tables; the CLI prints plain text without it


def _run_without_server_extra(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_SERVER_EXTRA + code],
        capture_output=True,
        text=True,
        cwd="/",  # the installed package, not the checkout
    )


def test_the_sdk_and_client_cli_import_without_the_server_extra() -> None:
    result = _run_without_server_extra(
        "import modelshelf, modelshelf.cli\n"
        "client = modelshelf.Client('http://127.0.0.1:9')\n"
        "client.close()\n"
        "print(sorted(name for name in sys.modules if name.startswith('modelshelf.')))\n"
    )
    assert result.returncode == 0, result.stderr
    assert "modelshelf.service" not in result.stdout
    assert "modelshelf.backends" not in result.stdout


def test_serve_without_the_server_extra_names_the_extra() -> None:
    result = _run_without_server_extra("from modelshelf.cli import main\nmain(['serve'])\n")
    assert result.returncode == 1
    assert 'pip install "modelshelf[server]"' in result.stderr
    assert "Traceback" not in result.stderr


def test_the_dockerfile_copies_every_source_folder_the_package_maps() -> None:
    """A folder left out of the image's COPY lines would build an image that cannot start."""
    import tomllib

    mapping = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = set(mapping["package-dir"].values())
    copied = set(re.findall(r"^COPY (\S+) \1$", (REPOSITORY / "Dockerfile").read_text(), re.M))
    assert folders <= copied, f"the Dockerfile does not COPY {sorted(folders - copied)}"
