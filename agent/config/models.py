"""Configuration models: the single source of truth for every setting ragops reads.

The file is TOML (``/etc/ragops/ragops.toml``, or ``--config`` / ``RAGOPS_CONFIG``); any field
can be overridden from the environment as ``RAGOPS_<SECTION>__<FIELD>`` (nested with ``__``).
Validation problems are collected, never raised one at a time: see ``agent.config.loading``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agent.config.fields import (
    AbsPath,
    Bare,
    Calendar,
    CredentialName,
    Duration,
    EnvName,
    Float,
    Int,
    MemoryLimit,
    Plain,
    PositiveSeconds,
    ServiceName,
    SignalName,
    Size,
    UserName,
    _absolute,
    _Model,
    parse_duration,
    parse_size,
)
from agent.config.loading import DEFAULT_CONFIG_PATH, DEFAULT_RUN_DIR
from agent.config.notification import NotifySettings
from agent.systemd.syntax import check_cpu_list, check_unit_path


class HealthSettings(_Model):
    """How the agent probes one service, and what it may do about it."""

    type: Literal["http", "tcp", "exec", "none"] = "none"
    url: Plain | None = None
    expect_status: list[Annotated[Int, Field(ge=100, le=599)]] = Field(
        default_factory=lambda: [200], min_length=1
    )
    header: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")] | None = None
    header_credential: CredentialName | None = None
    host: Plain = "127.0.0.1"
    port: Annotated[Int, Field(ge=1, le=65535)] | None = None
    argv: list[Plain] = Field(default_factory=list)
    interval_seconds: PositiveSeconds = 5.0
    timeout_seconds: PositiveSeconds = 5.0
    failure_threshold: Annotated[Int, Field(ge=1, le=1000)] = 3
    start_grace_seconds: Annotated[Float, Field(ge=0, le=86400)] = 30.0
    restart_limit: Annotated[Int, Field(ge=0, le=1000)] = 3
    restart_window_seconds: PositiveSeconds = 600.0

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _fields_for_type(self) -> HealthSettings:
        if self.type == "http" and not self.url:
            raise ValueError("a probe of type 'http' needs 'url'")
        if self.type == "tcp" and self.port is None:
            raise ValueError("a probe of type 'tcp' needs 'port'")
        if self.type == "exec" and not self.argv:
            raise ValueError("a probe of type 'exec' needs 'argv'")
        if (self.header is None) != (self.header_credential is None):
            raise ValueError("'header' and 'header_credential' go together")
        return self


class LogFileSettings(_Model):
    """One log file a service writes itself, and how to rotate it."""

    path: AbsPath
    max_size: Size = "100M"
    max_age: Duration = "14d"
    keep: Annotated[Int, Field(ge=0, le=10000)] = 7
    compress: bool = True
    reopen: Literal["signal", "watched", "copytruncate", "none"] = "signal"
    signal: SignalName = "HUP"
    kill_whom: Literal["main", "all"] = "main"
    reopen_timeout_seconds: PositiveSeconds = 10.0

    @property
    def max_size_bytes(self) -> int:
        return parse_size(self.max_size)

    @property
    def max_age_seconds(self) -> float:
        return parse_duration(self.max_age)


class ServiceSettings(_Model):
    """One service of the stack: a ``ragops-<name>.service`` unit."""

    description: Bare = ""
    exec: list[Plain] = Field(min_length=1)
    user: UserName = "ragops"
    group: UserName | None = None
    working_directory: AbsPath | None = None
    environment: dict[EnvName, Plain] = Field(default_factory=dict)
    environment_file: AbsPath | None = None
    credentials: dict[CredentialName, AbsPath] = Field(default_factory=dict)
    cpus: Plain | None = None
    cpu_group: ServiceName | None = None
    core_weight: Annotated[Float, Field(gt=0, le=1000)] = 1.0
    cpu_weight: Annotated[Int, Field(ge=1, le=10000)] = 100
    memory_max: MemoryLimit | None = None
    after: list[ServiceName] = Field(default_factory=list)
    depends_on: list[ServiceName] = Field(default_factory=list)
    restart: Literal["on-failure", "always"] = "on-failure"
    restart_sec: Annotated[Float, Field(ge=0, le=3600)] = 5.0
    start_timeout_seconds: PositiveSeconds = 90.0
    stop_timeout_seconds: PositiveSeconds = 30.0
    # ExecReload= sends this to the main process only (uvicorn: HUP = rolling worker restart).
    reload_signal: SignalName | None = None
    start_limit_burst: Annotated[Int, Field(ge=1, le=1000)] = 5
    start_limit_interval_seconds: PositiveSeconds = 300.0
    data_paths: list[AbsPath] = Field(default_factory=list)
    memory_deny_write_execute: bool = True
    log_rate_limit_interval_seconds: Annotated[Int, Field(ge=0, le=86400)] = 30
    log_rate_limit_burst: Annotated[Int, Field(ge=0, le=10_000_000)] = 10000
    health: HealthSettings = Field(default_factory=HealthSettings)
    log_files: list[LogFileSettings] = Field(default_factory=list)

    @field_validator("exec")
    @classmethod
    def _exec_absolute(cls, value: list[str]) -> list[str]:
        if not value[0].startswith("/"):
            raise ValueError(f"the program {value[0]!r} must be an absolute path")
        return value

    @field_validator("cpus")
    @classmethod
    def _cpus_syntax(cls, value: str | None) -> str | None:
        if value is not None:
            check_cpu_list(value)
        return value


class CpuSettings(_Model):
    cores: Literal["auto"] | Annotated[Int, Field(ge=1, le=4096)] = "auto"
    ragops_with: ServiceName | None = None


class GeneralSettings(_Model):
    unit_dir: AbsPath = "/etc/systemd/system"
    state_dir: AbsPath = "/var/lib/ragops"
    run_dir: AbsPath = DEFAULT_RUN_DIR
    log_dir: AbsPath = "/var/log/ragops"
    ragops_bin: AbsPath = "/usr/bin/ragops"


class QdrantSettings(_Model):
    url: Plain = "http://127.0.0.1:6333"
    api_key_file: AbsPath | None = None
    timeout_seconds: PositiveSeconds = 3600.0
    # A cluster's nodes (REST base URLs); [] = the peers of GET /cluster on ``url``.
    nodes: list[Plain] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+/?$", value):
            raise ValueError(f"{value!r} is not a base URL such as http://127.0.0.1:6333")
        return value.rstrip("/")

    @field_validator("nodes")
    @classmethod
    def _nodes_are_http(cls, value: list[str]) -> list[str]:
        return [cls._url_is_http(v) for v in value]


class AgentSettings(_Model):
    watchdog_seconds: Annotated[Int, Field(ge=2, le=3600)] = 30
    metrics_listen: Plain | None = "127.0.0.1:9464"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("metrics_listen")
    @classmethod
    def _loopback(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        match = re.match(r"^(127\.\d+\.\d+\.\d+|\[::1\]|localhost):(\d{1,5})$", value)
        if not match or not 0 < int(match.group(2)) < 65536:
            raise ValueError(f"{value!r} must be a loopback host:port such as 127.0.0.1:9464")
        return value


class S3Settings(_Model):
    endpoint: Plain | None = None
    region: Plain = "us-east-1"
    path_style: bool = True
    allow_http: bool = False
    access_key_id_file: AbsPath | None = None
    secret_access_key_file: AbsPath | None = None
    max_retries: Annotated[Int, Field(ge=0, le=100)] = 10
    retry_timeout_seconds: PositiveSeconds = 180.0
    # ragops already hashes every snapshot byte (SHA-256, kept in the signed manifest and
    # checked by verify and restore); hashing each part again for SigV4 costs ~1.1 s of
    # CPU per GiB and adds nothing that the per-part checksum and the manifest do not give.
    sign_payload: bool = False
    checksum: Literal["crc64nvme", "sha256", "none"] = "crc64nvme"
    # Off, ragops signs with the configured key files only and never asks the environment,
    # ~/.aws or the instance-metadata address for credentials.
    ambient_credentials: bool = False

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _plain_http_allowed(self) -> S3Settings:
        if self.endpoint and self.endpoint.startswith("http://") and not self.allow_http:
            raise ValueError(
                f"endpoint {self.endpoint!r} is plain http: set snapshot.s3.allow_http = true "
                "(loopback or a private network only) or use https://"
            )
        return self


class RetentionSettings(_Model):
    keep_last: Annotated[Int, Field(ge=0, le=100_000)] = 7
    keep_daily: Annotated[Int, Field(ge=0, le=100_000)] = 7
    keep_weekly: Annotated[Int, Field(ge=0, le=100_000)] = 4
    keep_monthly: Annotated[Int, Field(ge=0, le=100_000)] = 6
    orphan_grace_hours: Annotated[Float, Field(ge=0, le=24 * 366 * 10)] = 24.0


class VerifySettings(_Model):
    on_calendar: Plain = "weekly"
    randomized_delay_seconds: Annotated[int, Field(ge=0, le=86400)] = 3600
    scratch_dir: AbsPath | None = None


class SnapshotSettings(_Model):
    target: Bare = "file:///var/backups/ragops"
    collections: list[Plain] = Field(default_factory=list)
    on_calendar: Calendar = "daily"
    randomized_delay_seconds: Annotated[Int, Field(ge=0, le=86400)] = 1800
    part_size_mib: Annotated[Int, Field(ge=5, le=512)] = 8
    concurrency: Annotated[Int, Field(ge=1, le=64)] = 4
    timeout_seconds: PositiveSeconds = 3600.0
    mode: Literal["auto", "shards", "collection"] = "auto"
    s3: S3Settings = Field(default_factory=S3Settings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    verify: VerifySettings = Field(default_factory=VerifySettings)

    @field_validator("target")
    @classmethod
    def _target_scheme(cls, value: str) -> str:
        if not re.match(r"^(file:///\S*|s3://[a-z0-9][a-z0-9.-]{1,62}(/\S*)?)$", value):
            raise ValueError(
                f"{value!r} is not a target: use file:///absolute/dir or s3://bucket/prefix"
            )
        if value.startswith("file://"):
            _absolute(value.removeprefix("file://"))  # it goes into ReadWritePaths=
        else:
            check_unit_path(value)
        return value


class LogrotateSettings(_Model):
    on_calendar: Calendar = "hourly"
    randomized_delay_seconds: Annotated[Int, Field(ge=0, le=86400)] = 120


class Settings(BaseSettings):
    """The whole configuration. Build it with ``agent.config.loading.load_settings``."""

    model_config = SettingsConfigDict(
        env_prefix="RAGOPS_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
        allow_inf_nan=False,
    )

    ragops: GeneralSettings = Field(default_factory=GeneralSettings)
    cpu: CpuSettings = Field(default_factory=CpuSettings)
    qdrant: QdrantSettings = Field(default_factory=QdrantSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    snapshot: SnapshotSettings = Field(default_factory=SnapshotSettings)
    logrotate: LogrotateSettings = Field(default_factory=LogrotateSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    services: dict[ServiceName, ServiceSettings] = Field(default_factory=dict)

    _source: str = PrivateAttr(default=DEFAULT_CONFIG_PATH)

    @property
    def source(self) -> str:
        """The file this configuration was read from (for messages and unit headers)."""
        return self._source

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's contents arrive as init kwargs; the environment overrides them.
        return (env_settings, init_settings)
