"""The ``mrusfusion`` command (also ``python -m mrusfusion``): the top floor of the package.

Nothing in the package imports this one; it imports the rest. One module per command (``info``,
``demo``, ``fuse``, ``simulate``, ``reproduce``, ``sweep``, ``bench``), each with
``add_parser(subparsers)`` and ``run(args) -> int``; :mod:`.registry` lists them and holds
:func:`main`; :mod:`.common` holds the argument types, output checks and messages they share.

Adding a command
----------------
Write ``cli/<name>.py`` with ``add_parser(subparsers)``, which calls
:func:`~.common.command_parser` (the house layout of a manual: summary, description,
example) and ``set_defaults(func=run)``, and ``run(args) -> int``, which calls the library
(the work itself belongs in a library module, e.g. :mod:`mrusfusion.experiments`, not here);
then add the module to :data:`~.registry.COMMANDS`. A command from another package can plug in
through :data:`~.registry.EXTERNAL_COMMANDS`.

``run`` raises ``ValueError``, ``TypeError``, ``OSError`` (``FileNotFoundError``,
``FileExistsError``, ...) or ``ImportError`` for the user's mistakes; :func:`main` prints them as
one line ``mrusfusion: error: ...`` on stderr and returns 2 (``--traceback`` shows the traceback).
"""
from .registry import COMMANDS, EXTERNAL_COMMANDS, build_parser, main

__all__ = ["main", "build_parser", "COMMANDS", "EXTERNAL_COMMANDS"]
