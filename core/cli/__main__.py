"""``python -m core.cli`` runs the ``kfm`` command line."""

from core.cli import main

main()
