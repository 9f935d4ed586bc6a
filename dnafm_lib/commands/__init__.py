"""One module per ``dnafm`` subcommand: ``add_arguments(parser)`` and ``run(args)``.

Command modules parse arguments and call library functions; they import torch and other heavy
libraries inside ``run`` so that ``dnafm --help`` stays instant. Modules whose name begins with ``_`` hold options shared by several commands.

May import: every layer.
"""
