"""The ``mrusfusion`` parser: the list of commands, :func:`build_parser` and :func:`main`."""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from types import ModuleType
from typing import Dict, Optional

from .._version import __version__
from . import batch, bench, demo, fuse, info, register, reproduce, simulate, sweep
from .common import PROG, USER_ERRORS, HelpFormatter, fill

__all__ = ["main", "build_parser", "COMMANDS", "EXTERNAL_COMMANDS"]

#: The subcommands, in the order of ``mrusfusion --help``: name -> module with
#: ``add_parser(subparsers)`` (which sets ``func=run``) and ``run(args) -> int``.
COMMANDS: Dict[str, ModuleType] = {
    "info": info,
    "demo": demo,
    "fuse": fuse,
    "register": register,
    "simulate": simulate,
    "reproduce": reproduce,
    "sweep": sweep,
    "batch": batch,
    "bench": bench,
}

#: Plug-in commands from outside the package: name -> importable module with
#: ``add_parser(subparsers)``. A module that is not installed (or has no ``add_parser``) is
#: skipped; an error raised while importing an installed one is not hidden. Empty here: the
#: package's own commands are in :data:`COMMANDS`.
EXTERNAL_COMMANDS: Dict[str, str] = {}


def _plugin_setup(module_name: str):
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the module itself (or its package) being absent means "not installed"; a missing
        # dependency inside an existing module is a bug and must surface.
        if exc.name is not None and (module_name == exc.name
                                     or module_name.startswith(exc.name + ".")):
            return None
        raise
    return getattr(module, "add_parser", None)


def build_parser() -> argparse.ArgumentParser:
    """The ``mrusfusion`` argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=HelpFormatter,
        description=fill("Fuse an MR image with a registered ultrasound image (El Mansouri et "
                         "al., IEEE TIP 2020): joint MR super-resolution and US despeckling."
                         "\n\nRun `mrusfusion COMMAND --help` for the manual of a command."),
        epilog="examples:\n"
               "  mrusfusion demo demo-out\n"
               "  mrusfusion fuse mr.nii.gz us.nii.gz -o fused.nii.gz --report fused.png\n"
               "  mrusfusion simulate sim --ratio 4")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error instead of one line")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in COMMANDS.values():
        module.add_parser(subparsers)
    for module_name in EXTERNAL_COMMANDS.values():
        setup = _plugin_setup(module_name)
        if setup is not None:
            setup(subparsers)
    return parser


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror and exc.filename and exc.args[1:]:
        text = f"{exc.strerror}: {exc.filename}"  # "[Errno 2] ..." reads poorly
    return text


def main(argv: Optional[list] = None) -> int:
    """Run the ``mrusfusion`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 on a usage error or an error the user can fix (printed as
        one line ``mrusfusion: error: ...`` on stderr), 130 when interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        status = func(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted after {time.perf_counter() - started:.1f} s", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if args.traceback:
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    return 0 if status is None else int(status)
