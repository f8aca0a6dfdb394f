"""``vcops.toml``: where state lives, how wide to fan out, how to send mail.

Looked up from ``--config FILE``, else ``$VCOPS_CONFIG``, else ``./vcops.toml`` if it
exists; every setting has a default, so no file is needed. Relative paths are taken
from the directory holding the file (the working directory without one). Example::

    [store]
    state_dir = "state"                 # relative to this file; see resolve_state_dir
    # database_url = "postgresql+psycopg://vcops@db.example.net/vcops"  (no password here:
    # $PGPASSWORD, $PGPASSFILE, ~/.pgpass or pgpass_file below); default: SQLite in state_dir,
    # or $VCOPS_DATABASE_URL
    # pgpass_file = "/etc/vcops/pgpass"
    snapshots_dir = "state/snapshots"   # default: <state_dir>/snapshots

    [paths]
    inventory = "inventory"             # used when neither -i nor $VCOPS_INVENTORY is given
    templates = "my-templates"          # an operator's own copy of templates/

    [run]
    max_parallel = 50

    [workers]                         # site workers: pip install 'vcops[distributed]'
    broker_url = "redis://127.0.0.1:6379/0"   # or $VCOPS_BROKER_URL
    sites = ["fra1"]                  # these sites' targets run on `vcops worker --site fra1`

    [smtp]
    host = "smtp.example.net"
    port = 587
    security = "starttls"            # none | starttls | tls
    username = "vcops"
    password_env = "VCOPS_SMTP_PASSWORD"
    from = "vcops@example.net"

    [recipients]
    drift = ["secops@example.net"]
    ops = ["noc@example.net"]
    board = []                       # default: the change board in the inventory
    customers = ["maintenance-notices@lists.example.net"]

    [customer_notice]
    operator = "Example Voice Ltd"
    timezone = "Europe/London"       # the customers' zone (IANA name)
    contact = "support@example.net, +44 20 7946 0000"
    min_notice_hours = 72            # Code of Practice 4.1.2: announce changes in time
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from vcops.errors import ConfigError
from vcops.safeio import UnsafeInput, read_regular

#: vcops.toml is a few kilobytes; anything past this is not a configuration file.
MAX_CONFIG_BYTES = 1024 * 1024


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


STATE_ENV = "VCOPS_STATE_DIR"
ROOT_STATE_DIR = Path("/var/lib/vcops")


class StoreConfig(_Section):
    database_url: str | None = None
    pgpass_file: str | None = None
    state_dir: str | None = None
    snapshots_dir: str | None = None

    @field_validator("database_url")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        if value and _url_password(value):
            raise ValueError(
                "the URL holds a password; remove it and put it in $PGPASSWORD, a .pgpass "
                "file ($PGPASSFILE, ~/.pgpass or [store] pgpass_file)"
            )
        return value


def _url_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password
    except ArgumentError:
        return None


class PathsConfig(_Section):
    """Operator copies of what vcops ships (default: the files inside the package)."""

    templates: str | None = None
    inventory: str | None = None


class RunConfig(_Section):
    max_parallel: int = Field(50, ge=1, le=1000)


class SmtpConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    from_: str = Field("vcops@localhost", alias="from")
    timeout: float = Field(30.0, gt=0)
    cafile: str | None = None
    verify: bool = True


class RecipientsConfig(_Section):
    """Who gets which report. ``board`` defaults to the change board in the inventory."""

    drift: list[str] = []
    ops: list[str] = []
    board: list[str] = []
    customers: list[str] = []


class CustomerNoticeConfig(_Section):
    """The maintenance notice sent to customers before a window (Code of Practice 4.1.2)."""

    operator: str = "Your VoIP provider"
    timezone: str = "UTC"
    contact: str = ""
    min_notice_hours: int = Field(72, ge=0)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown timezone {value!r}; use an IANA name such as Europe/London or UTC"
            ) from exc
        return value


class WorkersConfig(_Section):
    """Site workers (``vcops[distributed]``): the broker, and which sites' targets run on
    their own workers (the others run here, in-process)."""

    broker_url: str | None = None
    sites: list[str] = []
    #: Targets per task: fewer broker round trips per host, finer retries with less.
    chunk: int = Field(25, ge=1, le=1000)
    #: How long the controller waits for a site's results before calling them unknown.
    result_timeout: float = Field(900.0, gt=0)
    #: After this long unacknowledged, a task of a dead worker goes to another worker.
    visibility_timeout: int = Field(1200, ge=1)
    #: A worker holds a host this long at most (the scan's SSH timeout bounds a task);
    #: a redelivered task finds the lock of a dead worker expired.
    host_lock_seconds: int = Field(240, ge=1)

    @model_validator(mode="after")
    def _lock_inside_visibility(self) -> WorkersConfig:
        if self.host_lock_seconds >= self.visibility_timeout:
            raise ValueError(
                "host_lock_seconds must be shorter than visibility_timeout, or a dead "
                "worker's hosts stay locked when its tasks are redelivered"
            )
        return self

    @field_validator("broker_url")
    @classmethod
    def _no_broker_password(cls, value: str | None) -> str | None:
        if value and "@" in value.split("//", 1)[-1].split("/", 1)[0]:
            raise ValueError(
                "the broker URL holds credentials; use $VCOPS_BROKER_URL for a URL with a password"
            )
        return value


class WebConfig(_Section):
    """``vcops serve``: where it listens, who may read, how mail links to it.

    ``token_file`` (a file holding one secret line) makes every page ask for
    ``Authorization: Bearer TOKEN`` or ``?token=``; decisions need no token, the
    signature is the authentication. ``base_url`` is what mail links point at.
    """

    bind: str = "127.0.0.1:8080"
    base_url: str | None = None
    token_file: str | None = None

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url {value!r} must start with http:// or https://")
        return value.rstrip("/") if value else value


class LabConfig(_Section):
    maildir: str | None = None


class Config(_Section):
    """The validated configuration, with the directory relative paths start from."""

    base_dir: Path = Path(".")
    source: Path | None = None
    store: StoreConfig = StoreConfig()
    run: RunConfig = RunConfig()
    smtp: SmtpConfig = SmtpConfig()
    recipients: RecipientsConfig = RecipientsConfig()
    customer_notice: CustomerNoticeConfig = CustomerNoticeConfig()
    workers: WorkersConfig = WorkersConfig()
    web: WebConfig = WebConfig()
    lab: LabConfig = LabConfig()
    paths: PathsConfig = PathsConfig()
    _state: tuple[Path, str] | None = PrivateAttr(default=None)

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def state_dir(self) -> Path:
        """The state directory, resolved once (see :func:`resolve_state_dir`)."""
        return self.state_origin[0]

    @property
    def state_origin(self) -> tuple[Path, str]:
        """The state directory and what chose it: ``config``, ``$VCOPS_STATE_DIR`` or
        ``default``."""
        if self._state is None:
            self._state = resolve_state_dir(self)
        return self._state

    @property
    def templates_dir(self) -> Path | None:
        """``[paths] templates`` resolved against the config file, if set."""
        return self.path(self.paths.templates).absolute() if self.paths.templates else None

    @property
    def inventory_dir(self) -> Path | None:
        """``[paths] inventory`` resolved against the config file, if set."""
        return self.path(self.paths.inventory).absolute() if self.paths.inventory else None

    @property
    def database_url(self) -> str:
        env = os.environ.get("VCOPS_DATABASE_URL")
        if env:
            return env
        if self.store.database_url:
            return self.store.database_url
        return f"sqlite:///{self.state_dir / 'vcops.db'}"

    @property
    def broker_url(self) -> str | None:
        return os.environ.get("VCOPS_BROKER_URL") or self.workers.broker_url

    @property
    def pgpass_file(self) -> Path | None:
        return self.path(self.store.pgpass_file) if self.store.pgpass_file else None

    @property
    def outbox_dir(self) -> Path:
        return self.state_dir / "outbox"

    @property
    def snapshots_dir(self) -> Path:
        return (
            self.path(self.store.snapshots_dir)
            if self.store.snapshots_dir
            else self.state_dir / "snapshots"
        )


def default_state_dir(uid: int | None = None) -> Path:
    """``/var/lib/vcops`` for root, ``$XDG_STATE_HOME/vcops`` (``~/.local/state/vcops``)
    for anyone else."""
    if (os.geteuid() if uid is None else uid) == 0:
        return ROOT_STATE_DIR
    xdg = os.environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "vcops"


def resolve_state_dir(config: Config) -> tuple[Path, str]:
    """Where vcops keeps its state, and why, decided in one place, in this order:

    1. ``[store] state_dir`` of the config file, relative to that file (not the CWD);
    2. ``$VCOPS_STATE_DIR`` (relative to the working directory: ``VCOPS_STATE_DIR=.vcops``
       keeps using a ``.vcops/`` of an older vcops);
    3. :func:`default_state_dir`.

    So every run with the same config shares one database, audit chain and snapshot
    store, whatever directory it starts from.
    """
    if config.store.state_dir:
        return config.path(config.store.state_dir).absolute(), "config"
    env = os.environ.get(STATE_ENV)
    if env:
        return Path(env).expanduser().absolute(), f"${STATE_ENV}"
    return default_state_dir(), "default"


def load_config(path: Path | None) -> Config:
    """Read and validate the configuration file (or the defaults when there is none).

    Raises:
        ConfigError: the file named explicitly is missing, or it is malformed.
    """
    explicit = path is not None
    if path is None:
        env = os.environ.get("VCOPS_CONFIG")
        path = Path(env) if env else Path("vcops.toml")
        explicit = bool(env)
    if not path.exists():
        if explicit:
            raise ConfigError(
                f"{path}: config file not found; create it or drop --config/VCOPS_CONFIG"
            )
        return Config(base_dir=Path.cwd())
    try:
        data = tomllib.loads(read_regular(path, limit=MAX_CONFIG_BYTES).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}); is it the right file?"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}; fix the syntax") from exc
    except UnsafeInput as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise ConfigError(f"{path}: cannot read the TOML: {exc}; fix the value") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        return Config.model_validate({**data, "base_dir": path.resolve().parent, "source": path})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        if first["type"] == "value_error":  # our own validators name the fix already
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"{path}: {where}: {message}") from exc
        fix = "remove it" if first["type"] == "extra_forbidden" else "fix the value"
        raise ConfigError(f"{path}: {where}: {first['msg']}; {fix}") from exc
