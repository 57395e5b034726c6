"""Secrets: from systemd's $CREDENTIALS_DIRECTORY first, else the configured file."""

from __future__ import annotations

import os
from pathlib import Path

from agent.errors import ConfigError


def read_credential(cred_id: str, fallback_path: str | None, setting: str) -> str | None:
    """The secret named ``cred_id`` (a LoadCredential= id), or None when none is configured.

    ``setting`` names the config field of the fallback path, for the error message.
    """
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    candidates: list[tuple[Path, str]] = []
    if directory:
        candidates.append((Path(directory) / cred_id, f"credential {cred_id!r}"))
    if fallback_path:
        candidates.append((Path(fallback_path), setting))
    for path, origin in candidates:
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            if origin == setting:
                raise ConfigError([f"{path}: not found (from {setting}); create it"]) from None
            continue
        except PermissionError:
            raise ConfigError(
                [f"{path}: permission denied (from {origin}); make it readable by this user"]
            ) from None
        except UnicodeDecodeError:
            raise ConfigError([f"{path}: not UTF-8 text (from {origin})"]) from None
        if not value:
            raise ConfigError([f"{path}: is empty (from {origin})"])
        return value
    return None
