"""`queuectl config`: list, get, set and unset settings kept in the store."""

from __future__ import annotations

import typer

from .. import config
from .app import config_app, store
from .render import emit_json, table


@config_app.command("list")
def config_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every setting with its value and where the value comes from."""
    settings, sources = config.resolve(store(create=False).config_items())
    values = {k: getattr(settings, k.replace("-", "_")) for k in config.KEYS}
    if as_json:
        emit_json({k: {"value": v, "source": sources[k]} for k, v in values.items()})
        return
    table(["key", "value", "source", "meaning"],
          [[k, config.KEYS[k].show(v), sources[k], config.KEYS[k].help]
           for k, v in values.items()], flex=3)


@config_app.command("get")
def config_get(key: str = typer.Argument(..., help="A setting's name.")) -> None:
    """Print one setting's effective value (durations and sizes as in `config list`)."""
    spec = config.check_key(key)
    settings, _ = config.resolve(store(create=False).config_items())
    print(spec.show(getattr(settings, spec.name.replace("-", "_"))))


@config_app.command("set", context_settings={"ignore_unknown_options": True})
def config_set(key: str = typer.Argument(...), value: str = typer.Argument(...)) -> None:
    """Store a setting (validated first) for every command and worker using this store."""
    name = config.validate(key, value)
    store(create=True).config_set(name, value.strip())


@config_app.command("unset")
def config_unset(key: str = typer.Argument(...)) -> None:
    """Go back to the default for a setting."""
    name = config.check_key(key).name
    store(create=False).config_unset(name)
