"""`queuectl completion SHELL`: the script that makes a shell complete queuectl's commands.

The script asks queuectl itself for completions (Typer's protocol: COMPLETE_VAR in the
environment), so they always match the installed version."""

from __future__ import annotations

import typer

from ..errors import InvalidInput
from .app import COMPLETE_VAR, app

SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


@app.command("completion")
def completion(shell: str = typer.Argument(..., metavar="SHELL",
                                           help="bash, zsh, fish, powershell or pwsh.")) -> None:
    """Print the shell completion script, e.g. in ~/.bashrc: eval "$(queuectl completion bash)"."""
    from typer._completion_shared import get_completion_script

    if shell not in SHELLS:
        raise InvalidInput(f"no completion for shell {shell[:20]!r} (known: {', '.join(SHELLS)})")
    print(get_completion_script(prog_name="queuectl", complete_var=COMPLETE_VAR, shell=shell))
