"""``python -m sandex``: the same as the ``sandex`` command."""

from sandex.cli.main import main

main()
