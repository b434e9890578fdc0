"""How notices reach recipients: one module per connector, behind ``base.Connector``."""

from __future__ import annotations

import importlib

from safeeye.takedown.connectors.base import CONNECTORS, Connector

#: The connector modules, imported by name (they register themselves).
CONNECTOR_MODULES = (
    "safeeye.takedown.connectors.api",
    "safeeye.takedown.connectors.email",
    "safeeye.takedown.connectors.stopncii",
    "safeeye.takedown.connectors.export",
)


def connector_named(name: str) -> type[Connector]:
    """The connector class registered as ``name`` (``KeyError`` if none)."""
    if name not in CONNECTORS:
        for module in CONNECTOR_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
    return CONNECTORS[name]
