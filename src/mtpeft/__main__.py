"""``python -m mtpeft ...`` (also what ``accelerate launch -m mtpeft`` runs)."""

from mtpeft.cli.main import main

main()
