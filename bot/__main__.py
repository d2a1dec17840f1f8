"""`python -m bot` runs the `signoff` command."""

from bot.cli import main

main()
