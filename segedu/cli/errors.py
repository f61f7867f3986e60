"""How the command line fails: one readable line on stderr and exit status 1, never a traceback.

A command-line user who mistypes an option or points at a missing folder needs one sentence
saying what is wrong, not forty lines of Python internals. So every command raises
:class:`CLIError` (or a ``ValueError``, ``TypeError``, ``OSError`` from the library) for bad
input, and :func:`run_command` turns it into ``PROG: error: MESSAGE``. Anything else, a bug, also
ends in one line, which names the exception type and points at ``--debug``; ``--debug`` re-raises
it with the full traceback. :class:`CLIParser` makes argparse's own usage errors follow the same
rule (argparse would print the whole usage block and exit with status 2).

Shared by ``train`` and ``predict``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

__all__ = ["CLIError", "CLIParser", "Terminated", "run_command"]


class CLIError(Exception):
    """A problem with the command's input: reported as one line, without a traceback."""


class CLIParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and raises instead of exiting)."""

    def error(self, message):
        raise CLIError(f"{message} (see {self.prog} --help)")


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill PID``, a job scheduler's time limit) while a command runs."""


def _terminate(signum, frame):
    raise Terminated()


def run_command(fn, argv, prog: str) -> int:
    """Run a command; bad input -> one line on stderr and status 1 (``--debug``: the traceback).

    Ctrl-C and SIGTERM (``kill``) stop the command the same way: its ``finally`` blocks run, so a
    half-written temporary file is removed and a run folder's lock released.
    """
    debug = "--debug" in argv
    installed = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if installed else None
    try:
        return fn(argv)
    except Terminated:
        print(f"{prog}: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 — every failure becomes one readable line
        if debug:
            raise
        known = isinstance(e, (CLIError, ValueError, TypeError, FileNotFoundError, OSError))
        text = " ".join(str(e).split()) or type(e).__name__
        hint = "" if known else f" ({type(e).__name__}; run with --debug for the traceback)"
        print(f"{prog}: error: {text}{hint}", file=sys.stderr)
        return 1
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
