"""``python -m streams.cli``: the flexstream command."""

from streams.cli import main

main()
