"""The registered signals and models: a decorator adds one, a setting names modules of more.

Every module of the ``safeeye.signals`` package is imported on first use, so a built-in signal
is one new module whose class carries ``@register``. Modules outside the package are named by
``SAFEEYE_SIGNAL_MODULES`` and imported with ``load_modules`` in every process that analyses,
records or shows signals (analysis workers are spawned: they import them themselves).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from safeeye.errors import ConfigError
from safeeye.signals.base import FileSignal, FrameSignal, MediaSignal, Signal, Target

if TYPE_CHECKING:
    from safeeye.config import Settings
    from safeeye.signals.base import LazyModel

S = TypeVar("S", bound=type[Signal[Any]])
#: Builds a model from the settings and a cap on its CPU threads (None: the model's default).
ModelFactory = Callable[["Settings", "int | None"], "LazyModel[Any, Any]"]
F = TypeVar("F", bound=ModelFactory)

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_lock = threading.RLock()
_signals: dict[str, Signal[Any]] = {}
_models: dict[str, ModelFactory] = {}
_ordered: dict[Target | None, tuple[Signal[Any], ...]] = {}
_discovered = False


def register(cls: S) -> S:
    """Class decorator: add the signal ``cls`` under its ``name`` (lower-case, digits, ``_``).

    Registering the same class again (a module reloaded) replaces it; another class under a
    name already taken is a ``ConfigError``.
    """
    if not issubclass(cls, FrameSignal | FileSignal | MediaSignal):
        raise ConfigError(f"{cls.__name__} is not a FrameSignal, FileSignal or MediaSignal")
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"signal {cls.__name__} needs a name like 'synthetic_face'")
    if not isinstance(cls.version, int) or cls.version < 1:
        raise ConfigError(f"signal {name!r} needs a version of 1 or more")
    kind = next(k for k in (FrameSignal, FileSignal, MediaSignal) if issubclass(cls, k))
    if not cls.applies_to or not cls.applies_to <= kind.applies_to:
        allowed = ", ".join(sorted(kind.applies_to))
        raise ConfigError(f"signal {name!r}, a {kind.__name__}, applies only to {allowed}")
    with _lock:
        current = _signals.get(name)
        if current is not None and _identity(type(current)) != _identity(cls):
            raise ConfigError(f"two signals are named {name!r}")
        _signals[name] = cls()
        _ordered.clear()
    return cls


def unregister(name: str) -> None:
    """Remove the signal ``name`` (tests that define their own)."""
    with _lock:
        _signals.pop(name, None)
        _ordered.clear()


def register_model(name: str) -> Callable[[F], F]:
    """Decorator of a ``ModelFactory``: signals name the model in ``models`` and get it from
    their context."""

    def add(factory: F) -> F:
        with _lock:
            _models[name] = factory
        return factory

    return add


def build_model(name: str, settings: Settings, threads: int | None = None) -> LazyModel[Any, Any]:
    """A new (not yet loaded) instance of the registered model ``name``."""
    _discover()
    factory = _models.get(name)
    if factory is None:
        raise ConfigError(f"no model is registered as {name!r}")
    return factory(settings, threads)


def load_modules(names: str | Iterable[str]) -> None:
    """Import each module (a comma-separated string or names; one imported already costs a
    lookup): the signals and models they register join the built-in ones. ``ConfigError`` when
    one cannot be imported."""
    if isinstance(names, str):
        names = names.split(",")
    for name in (n.strip() for n in names):
        if not name:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                f"signal module {name!r} cannot be imported ({type(exc).__name__}); "
                "check SAFEEYE_SIGNAL_MODULES",
                code="signal_module",
            ) from exc


def signals(target: Target | None = None) -> tuple[Signal[Any], ...]:
    """The registered signals (those that apply to ``target``, if given), each after the
    signals it reads."""
    _discover()
    with _lock:
        ordered = _ordered.get(target)
        if ordered is None:
            everything = _ordered.get(None) or _sort(_signals)
            _ordered[None] = everything
            ordered = tuple(s for s in everything if target is None or target in s.applies_to)
            _ordered[target] = ordered
        return ordered


def get(name: str) -> Signal[Any] | None:
    """The registered signal ``name``, or None."""
    _discover()
    return _signals.get(name)


def is_frame_signal(signal: Signal[Any]) -> bool:
    """Whether ``signal`` has one value per frame (else one per media)."""
    return isinstance(signal, FrameSignal)


def _sort(registered: dict[str, Signal[Any]]) -> tuple[Signal[Any], ...]:
    """By name (the same in every process, whatever imported what first), each signal moved
    after the signals it reads."""
    done: dict[str, Signal[Any]] = {}
    visiting: set[str] = set()

    def visit(signal: Signal[Any]) -> None:
        if signal.name in done:
            return
        if signal.name in visiting:
            raise ConfigError(f"signals read each other in a circle at {signal.name!r}")
        visiting.add(signal.name)
        for name in signal.after:
            before = registered.get(name)
            if before is None:
                raise ConfigError(f"signal {signal.name!r} reads {name!r}, which is not registered")
            visit(before)
        visiting.discard(signal.name)
        done[signal.name] = signal

    for name in sorted(registered):
        visit(registered[name])
    return tuple(done.values())


def _discover() -> None:
    """Import every module of this package once (each registers what it defines)."""
    global _discovered
    if _discovered:
        return
    # Not under ``_lock``: a module being imported by another thread registers under it.
    import safeeye.signals as package

    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"{package.__name__}.{module.name}")
    _discovered = True


def _identity(cls: type) -> tuple[str, str]:
    return cls.__module__, cls.__qualname__
