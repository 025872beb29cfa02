"""Settings from ``MODELSHELF_*`` environment variables and an optional TOML file."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from modelshelf.modelstore.opening import check_store_url

HttpParser = Literal["httptools", "h11"]  # uvicorn's two HTTP/1.1 parsers
LogFormat = Literal["text", "json"]
MetricsAccess = Literal["public", "token", "off"]

GiB = 1 << 30
MiB = 1 << 20
BROWSER_LIKE_QUOTA = 10 * MiB
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Server settings. Every field can be set as ``MODELSHELF_<FIELD>`` or in the TOML file."""

    model_config = SettingsConfigDict(env_prefix="MODELSHELF_", env_nested_delimiter="__")

    config: Path | None = Field(default=None, description="TOML file with these settings")
    data_dir: Path = Field(default=Path("data"), description="Where the default stores live")
    stores: dict[str, str] = Field(
        default_factory=dict,
        description="Store name -> backend URL; replaces the defaults when given",
    )
    s3_url: str | None = Field(
        default=None, description="Adds the 's3' store, e.g. s3://bucket/prefix?endpoint_url=..."
    )
    quotas: dict[str, int] = Field(
        default_factory=lambda: {"localstorage": BROWSER_LIKE_QUOTA},
        description="Store name -> byte quota over all stored bytes",
    )
    retention: dict[str, int] = Field(
        default_factory=dict,
        description="Store name -> versions kept per model: after each save the older ones "
        "are removed, never one an alias points to",
    )
    max_body_bytes: int = Field(default=8 * GiB, description="Largest accepted save (413 above)")
    max_json_body_bytes: int = Field(
        default=64 * MiB, description="Largest application/json save (base64 weights in memory)"
    )
    max_model_json_bytes: int = Field(default=64 * MiB, description="Largest model.json part")
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="The whole request head must arrive within this many seconds of the "
        "connection opening or of the head's first byte (408, then closed)",
    )
    body_idle_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest pause between two body chunks of an upload (408, save discarded)",
    )
    http_parser: HttpParser = Field(
        default="httptools",
        description="uvicorn's HTTP/1.1 parser: httptools (faster, see bench/README.md) or "
        "h11 (pure Python)",
    )
    keep_alive_timeout_seconds: int = Field(
        default=5,
        gt=0,
        description="How long an idle keep-alive connection stays open (uvicorn's "
        "timeout_keep_alive); above a load balancer's idle timeout when behind one",
    )
    store_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Longest wait for one storage call; past it the request answers 503 "
        "unavailable naming the store (S3 part uploads get 6x this)",
    )
    store_threads: int = Field(
        default=8,
        gt=0,
        description="Blocking storage calls in flight per store; each store has its own "
        "threads, so a stuck store cannot starve the others",
    )
    upload_buffer_bytes: int = Field(
        default=32 * MiB,
        ge=16 * MiB,
        description="Memory all uploads in flight may hold in backend write buffers (S3 parts, "
        "SQLite batches) together; further uploads wait for their turn",
    )
    cors_origins: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Origins whose pages may call the API; pages of other origins cannot "
        "save or remove models (403 forbidden_origin)",
    )
    cors_allow_credentials: bool = False
    allowed_hosts: list[str] | None = Field(
        default=None,
        description="Host header values answered (*.example.com wildcards); default: the "
        "loopback names when the server binds a loopback address, else any (with a warning)",
    )
    auth: Literal["none", "tokens"] | None = Field(
        default=None,
        description="none: whoever reaches the port may do anything; tokens: every request "
        "but health checks and docs needs a token. Default: none when the server binds a "
        "loopback address, tokens otherwise",
    )
    admin_token: SecretStr | None = Field(
        default=None, description="The operator's token: every scope, creates the others"
    )
    admin_token_file: Path | None = Field(
        default=None, description="A file holding the admin token (a container secret)"
    )
    auth_store: str | None = Field(
        default=None,
        description="Backend URL where tokens live, shared by every replica (default "
        "sqlite://DATA_DIR/auth.sqlite; replicas over S3 use s3://BUCKET/PREFIX)",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(
        default=1,
        ge=1,
        description="Worker processes on one port (one per core); a worker that dies is "
        "replaced. Every store is shared safely between them",
    )

    log_format: LogFormat = Field(
        default="text",
        description="text: uvicorn's log lines; json: one JSON object per line, and access "
        "lines with method, route template, status, bytes, duration and request id",
    )
    metrics: MetricsAccess | None = Field(
        default=None,
        description="/metrics: public (no token), token (a token with read:* or admin) or off "
        "(not served). Default: token when tokens are on and the server binds a non-loopback "
        "address, else public",
    )

    @model_validator(mode="after")
    def _credentials_need_listed_origins(self) -> Settings:
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError(
                "MODELSHELF_CORS_ALLOW_CREDENTIALS=true needs MODELSHELF_CORS_ORIGINS to list "
                "the origins: with '*', every site could act with a visitor's credentials"
            )
        return self

    @model_validator(mode="after")
    def _tokens_need_an_admin_token(self) -> Settings:
        if self.admin_token is not None and self.admin_token_file is not None:
            raise ValueError("set MODELSHELF_ADMIN_TOKEN or MODELSHELF_ADMIN_TOKEN_FILE, not both")
        admin = self.admin()  # a token file that cannot be read fails here, at startup
        if self.auth_mode() == "tokens" and not is_loopback(self.host) and not admin:
            raise ValueError(
                f"modelshelf binds {self.host} with MODELSHELF_AUTH=tokens but has no admin "
                f"token, so nobody could create tokens: set MODELSHELF_ADMIN_TOKEN (or "
                f"MODELSHELF_ADMIN_TOKEN_FILE), or choose MODELSHELF_AUTH=none explicitly"
            )
        return self

    def auth_mode(self) -> Literal["none", "tokens"]:
        """``auth``, or its default for the address the server binds."""
        if self.auth is not None:
            return self.auth
        return "none" if is_loopback(self.host) else "tokens"

    def metrics_access(self) -> MetricsAccess:
        """``metrics``, or its default for the address the server binds and the auth mode."""
        if self.metrics is not None:
            return self.metrics
        exposed = self.auth_mode() == "tokens" and not is_loopback(self.host)
        return "token" if exposed else "public"

    def admin(self) -> str | None:
        """The admin token, from MODELSHELF_ADMIN_TOKEN or the file it names."""
        if self.admin_token is not None:
            return self.admin_token.get_secret_value() or None
        if self.admin_token_file is None:
            return None
        try:
            token = self.admin_token_file.read_text().strip()
        except OSError as error:
            raise ValueError(
                f"MODELSHELF_ADMIN_TOKEN_FILE names {self.admin_token_file}, which cannot be "
                f"read ({error.strerror}); point it at the file holding the admin token"
            ) from None
        if not token:
            raise ValueError(f"MODELSHELF_ADMIN_TOKEN_FILE {self.admin_token_file} is empty")
        return token

    def auth_store_url(self) -> str:
        return self.auth_store or f"sqlite://{self.data_dir / 'auth.sqlite'}"

    def bound_to(self, host: str) -> Settings:
        """These settings for a server bound to ``host``, checked again (defaults follow it)."""
        return self.model_validate({**self.model_dump(), "host": host})

    def hosts_answered(self) -> list[str]:
        """``allowed_hosts``, or its default for the address the server binds."""
        if self.allowed_hosts is not None:
            return list(self.allowed_hosts)
        if is_loopback(self.host):
            return [*LOOPBACK_HOSTS]
        return ["*"]

    @field_validator("stores")
    @classmethod
    def _known_store_schemes(cls, stores: dict[str, str]) -> dict[str, str]:
        for name, url in stores.items():
            try:
                check_store_url(url)
            except ValueError as error:
                raise ValueError(f"MODELSHELF_STORES[{name!r}]: {error}") from None
        return stores

    @field_validator("retention")
    @classmethod
    def _keep_at_least_one(cls, retention: dict[str, int]) -> dict[str, int]:
        for name, keep in retention.items():
            if keep < 1:
                raise ValueError(f"MODELSHELF_RETENTION[{name!r}] must keep at least 1 version")
        return retention

    @field_validator("auth_store")
    @classmethod
    def _auth_store_is_a_backend(cls, url: str | None) -> str | None:
        if url is not None:
            try:
                check_store_url(url)
            except ValueError as error:
                raise ValueError(f"MODELSHELF_AUTH_STORE: {error}") from None
        return url

    @field_validator("s3_url")
    @classmethod
    def _s3_url_is_s3(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith("s3://"):
            raise ValueError(f"MODELSHELF_S3_URL must start with s3://, not {url!r}")
        return url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = settings_cls.model_config.get("toml_file") or os.environ.get(
            "MODELSHELF_CONFIG"
        )
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    def store_urls(self) -> dict[str, str]:
        """The configured stores, or the embedded defaults under ``data_dir``."""
        if self.stores:
            return dict(self.stores)
        urls = {
            "file": f"file://{self.data_dir / 'models'}",
            "indexeddb": f"sqlite://{self.data_dir / 'indexeddb.sqlite'}",
            "localstorage": f"sqlite://{self.data_dir / 'localstorage.sqlite'}",
        }
        if self.s3_url:
            urls["s3"] = self.s3_url
        return urls


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, then the TOML file (``config_file`` or MODELSHELF_CONFIG)."""
    if config_file is None:
        return Settings(**overrides)
    config_path = Path(config_file)
    if not config_path.is_file():
        raise FileNotFoundError(f"settings file {config_path} does not exist; check --config")

    class FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=config_path)

    return FileSettings(**overrides)
