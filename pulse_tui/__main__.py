"""python -m pulse_tui → the `pulse` command."""

from pulse_tui.cli.main import run

if __name__ == "__main__":
    run()
