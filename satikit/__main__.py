"""`python -m satikit` (also what `torchrun -m satikit` runs)."""

from satikit.cli import cli

if __name__ == "__main__":
    cli()
