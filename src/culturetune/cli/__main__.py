"""``python -m culturetune.cli``: the same as the ``culturetune`` command."""

from culturetune.cli import main

main()
