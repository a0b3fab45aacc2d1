"""Plugin manager and adapter registry (timm-style factory on top of pluggy hooks).

Plugins are loaded once, lazily, from the entry-point group ``satikit`` (built-in adapters
included). Environment switches:

* ``SATIKIT_PLUGINS``: comma-separated allow-list of entry-point names (empty: load none);
* ``SATIKIT_DISABLE_PLUGINS``: comma-separated block-list;
* ``SATIKIT_TRACE_PLUGINS``: any non-empty value prints every hook call to stderr.

A plugin that fails to import, fails inside a hook, or registers a taken adapter name gives a
:class:`PluginWarning` naming it; it never takes the CLI down.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from satikit import hookspecs
from satikit.protocols import Adapter, AdapterInfo, Option

if TYPE_CHECKING:
    import click

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginWarning",
    "create_adapter",
    "get_adapter_info",
    "get_plugin_manager",
    "is_adapter",
    "list_adapters",
    "load_plugin_commands",
    "plugin_versions",
]

ENTRY_POINT_GROUP = "satikit"

_plugin_manager: pluggy.PluginManager | None = None
_registry_cache: tuple[tuple[Any, ...], dict[str, AdapterInfo]] | None = None


class PluginWarning(UserWarning):
    """A plugin could not be loaded or registered something invalid."""


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager; entry-point plugins are loaded on the first call."""
    global _plugin_manager
    if _plugin_manager is None:
        _plugin_manager = _create_plugin_manager()
    return _plugin_manager


def _create_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if os.environ.get("SATIKIT_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda message: sys.stderr.write(f"satikit trace: {message}"))
        pm.enable_tracing()
    _load_entry_points(pm)
    return pm


def _env_names(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allow = _env_names("SATIKIT_PLUGINS")
    block = _env_names("SATIKIT_DISABLE_PLUGINS") or set()
    seen: dict[str, str] = {}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        name = entry_point.name
        if name in seen:
            warnings.warn(
                f"satikit plugin {name!r} ({entry_point.value}) ignored: the name is already "
                f"taken by {seen[name]}",
                PluginWarning,
                stacklevel=2,
            )
            continue
        seen[name] = entry_point.value
        if name in block or (allow is not None and name not in allow):
            pm.set_blocked(name)
            continue
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
        except Exception as exc:  # a broken plugin must not take satikit down
            warnings.warn(
                f"satikit plugin {name!r} ({entry_point.value}) failed to load: "
                f"{type(exc).__name__}: {exc}",
                PluginWarning,
                stacklevel=2,
            )


def plugin_versions(pm: pluggy.PluginManager | None = None) -> dict[str, str]:
    """Plugin name -> version of its distribution (``__version__`` for plugins added in code)."""
    pm = pm or get_plugin_manager()
    by_id = {id(plugin): dist.version for plugin, dist in pm.list_plugin_distinfo()}
    versions = {}
    for name, plugin in pm.list_name_plugin():
        if plugin is not None:
            versions[name] = by_id.get(id(plugin)) or str(getattr(plugin, "__version__", ""))
    return versions


def _each_plugin(pm: pluggy.PluginManager, hook: str) -> Iterator[tuple[str, Any]]:
    """Yield ``(plugin_name, caller)`` per implementation of ``hook``, in registration order."""
    impls = getattr(pm.hook, hook).get_hookimpls()
    plugins = [impl.plugin for impl in impls]
    for impl in impls:
        others = [plugin for plugin in plugins if plugin is not impl.plugin]
        yield impl.plugin_name, pm.subset_hook_caller(hook, remove_plugins=others)


class _Registrar:
    """The ``register`` callable handed to ``register_adapters`` (see the hookspec)."""

    def __init__(self) -> None:
        self.adapters: dict[str, AdapterInfo] = {}
        self.plugin = ""
        self.version = ""

    def __call__(
        self,
        name: str,
        factory: Any,
        *,
        dims: tuple[int, ...] = (2, 3),
        options: Mapping[str, Option] | None = None,
        test_options: Mapping[str, Any] | None = None,
        override: bool = False,
        importer: Any = None,
        importer_help: str = "",
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"adapter name must be a non-empty string, got {name!r}")
        if not callable(factory):
            raise TypeError(f"adapter {name!r}: factory must be callable, got {factory!r}")
        if importer is not None and not callable(importer):
            raise TypeError(f"adapter {name!r}: importer must be callable, got {importer!r}")
        dims = tuple(int(d) for d in dims)
        if not dims or any(d < 1 for d in dims):
            raise ValueError(f"adapter {name!r}: dims must be positive integers, got {dims!r}")
        options = dict(options or {})
        bad = [key for key, value in options.items() if not isinstance(value, Option)]
        if bad:
            raise TypeError(f"adapter {name!r}: options {bad} are not satikit Option objects")
        existing = self.adapters.get(name)
        if existing is not None and not override:
            warnings.warn(
                f"adapter {name!r} from plugin {self.plugin!r} ignored: already registered by "
                f"plugin {existing.plugin!r} (register with override=True to replace it)",
                PluginWarning,
                stacklevel=2,
            )
            return
        info = AdapterInfo(
            name,
            factory,
            dims,
            options,
            dict(test_options or {}),
            self.plugin,
            self.version,
            importer,
            str(importer_help),
        )
        info.resolve_options(info.test_options)  # test options must be declared options
        self.adapters[name] = info


def _registry(pm: pluggy.PluginManager | None = None) -> dict[str, AdapterInfo]:
    global _registry_cache
    pm = pm or get_plugin_manager()
    key = (id(pm),) + tuple((name, id(plugin)) for name, plugin in pm.list_name_plugin())
    if _registry_cache is not None and _registry_cache[0] == key:
        return _registry_cache[1]
    registrar = _Registrar()
    versions = plugin_versions(pm)
    for plugin_name, caller in _each_plugin(pm, "register_adapters"):
        registrar.plugin, registrar.version = plugin_name, versions.get(plugin_name, "")
        try:
            caller(register=registrar)
        except Exception as exc:
            warnings.warn(
                f"satikit plugin {plugin_name!r} failed in register_adapters: "
                f"{type(exc).__name__}: {exc}",
                PluginWarning,
                stacklevel=2,
            )
    _registry_cache = (key, registrar.adapters)
    return registrar.adapters


def list_adapters(filter: str = "") -> list[str]:
    """Sorted names of the registered adapters containing ``filter`` (case-insensitive)."""
    return sorted(name for name in _registry() if filter.lower() in name.lower())


def is_adapter(name: str) -> bool:
    """Whether an adapter ``name`` is registered."""
    return name in _registry()


def get_adapter_info(name: str) -> AdapterInfo:
    """The registry entry of adapter ``name``.

    Raises:
        ValueError: unknown name; the message lists the registered adapters.
    """
    registry = _registry()
    if name not in registry:
        known = ", ".join(sorted(registry)) or "none (are the plugins installed?)"
        raise ValueError(f"unknown adapter {name!r}; registered adapters: {known}")
    return registry[name]


def create_adapter(
    name: str,
    *,
    dims: int = 2,
    in_channels: int = 3,
    out_channels: int = 3,
    domain_encoding: bool = True,
    **options: Any,
) -> Adapter:
    """Build a registered adapter (like ``timm.create_model``).

    Args:
        name: registry name, e.g. ``"cyclegan"``.
        dims: number of spatial dimensions (must be one the adapter supports).
        in_channels: channels of domain X images.
        out_channels: channels of domain Y images.
        domain_encoding: whether images are domain-encoded (paper III-C).
        **options: adapter hyperparameters; strings are parsed (CLI ``-o KEY VALUE``).

    Raises:
        ValueError: unknown adapter, unsupported ``dims``, unknown option or bad value.
    """
    info = get_adapter_info(name)
    if dims not in info.dims:
        raise ValueError(f"adapter {name!r} supports dims {list(info.dims)}, not {dims}")
    resolved = info.resolve_options(options)
    adapter = info.factory(
        dims=dims,
        in_channels=in_channels,
        out_channels=out_channels,
        domain_encoding=domain_encoding,
        **resolved,
    )
    if not isinstance(adapter, Adapter):
        raise TypeError(
            f"adapter {name!r} from plugin {info.plugin!r} does not implement "
            "satikit.protocols.Adapter"
        )
    return adapter


def load_plugin_commands(cli: click.Group) -> None:
    """Let every plugin add its commands to ``cli`` (hook ``register_commands``)."""
    for plugin_name, caller in _each_plugin(get_plugin_manager(), "register_commands"):
        try:
            caller(cli=cli)
        except Exception as exc:
            warnings.warn(
                f"satikit plugin {plugin_name!r} failed in register_commands: "
                f"{type(exc).__name__}: {exc}",
                PluginWarning,
                stacklevel=2,
            )
