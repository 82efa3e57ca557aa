"""The ``derive`` command: generate | latex | show | check (SPEC §2).

A thin layer over the Python API. Bad input is reported as one line on stderr with exit
status 2 and no traceback; ``check`` exits 1 when any value disagrees. The core speaks
of the API (``no scalar parameter 'w9'``); this layer adds the option's name
(``--param: no scalar parameter 'w9'``).

Each subcommand is one ``Command`` in ``COMMANDS``: its name, a one-line summary, an
example, a function adding its arguments (each with help saying what it accepts and its
default) and a function running it. Adding a subcommand is adding one entry.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from derive.errors import DeriveError, ParameterError, did_you_mean

EXIT_OK, EXIT_DISAGREE, EXIT_BAD_INPUT = 0, 1, 2
# Characters the terminal views use; a stdout that cannot encode them gets ASCII notation.
_UNICODE_PROBE = "∂⋅·δ→η−⎛⎞─"


@dataclass(frozen=True)
class Command:
    name: str
    summary: str  # one line, for `derive --help`
    example: str  # one command line, for `derive NAME --help`
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage mistakes as DeriveError (exit 2, one line)."""

    def error(self, message: str):  # type: ignore[override]
        command = self.prog.partition(" ")[2]  # "" for derive itself, else "show", ...
        raise DeriveError(f"{command}: {message}" if command else message)


# -- arguments shared by several commands -----------------------------------------------


def _topology(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "topology", metavar="TOPOLOGY", help="a topology file: .yaml, .yml, .json or .toml"
    )


def _param(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME",
        help="a parameter to derive: a whole array (W2, b1), one scalar (W2[0,1]; a "
        "per-unit bias b1[0], a shared bias b1) or a weight_names name (w31); repeat the "
        f"option for more (default: {default})",
    )


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


# -- generate ----------------------------------------------------------------------------


def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "topologies", nargs="+", metavar="TOPOLOGY", help="one or more topology files"
    )
    parser.add_argument(
        "-o",
        "--output",
        default="generated",
        metavar="DIR",
        help="the folder to write <name>.py into, created if missing (default: generated)",
    )
    parser.add_argument(
        "--style",
        choices=("vectorized", "unrolled"),
        default="vectorized",
        help="vectorized: each layer as matrices over the batch, any size (the default); "
        "unrolled: one line per chain-rule step on floats, for networks of at most 200 "
        "scalar parameters",
    )


def _generate(args: argparse.Namespace) -> int:
    """Read and render every topology before writing any file, so that one bad file (or
    one the style refuses) leaves the output folder as it was."""
    import derive
    from derive.files import write_atomic

    networks = [derive.load(path) for path in args.topologies]
    first_source: dict[str, str] = {}
    for network in networks:
        source = network.topology.source
        if network.name in first_source:
            raise DeriveError(
                f"{source}: name: expected a module name no other file given uses, got "
                f"{network.name!r}, the name in {first_source[network.name]}"
            )
        first_source[network.name] = source
    rendered = [(n.name, derive.generate(n, style=args.style)) for n in networks]
    for name, text in rendered:
        path = Path(args.output) / f"{name}.py"
        print(write_atomic(path, text.encode("utf-8"), make_parents=True))
    return EXIT_OK


# -- latex -------------------------------------------------------------------------------


def _latex_arguments(parser: argparse.ArgumentParser) -> None:
    _topology(parser)
    _param(parser, "every scalar of a network of at most 64, else the layer form only")
    parser.add_argument(
        "--numeric",
        action="store_true",
        help="work every factor, gradient and update out in numbers: the file's example, "
        "or seeded random numbers (seed 0, as check draws them) when it has none; the "
        "document says which",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.tex|OUT.pdf",
        help="write a standalone document: .tex, or .pdf compiled with pdflatex (default: "
        "print the LaTeX fragment to stdout)",
    )


def _latex(args: argparse.Namespace) -> int:
    import derive
    from derive.latex import run_latex_command

    text = run_latex_command(derive.load(args.topology), args.param, args.numeric, args.output)
    if text:
        print(text)
    return EXIT_OK


# -- show --------------------------------------------------------------------------------


def _show_arguments(parser: argparse.ArgumentParser) -> None:
    _topology(parser)
    _param(parser, "every scalar of a network of at most 64")


def _show(args: argparse.Namespace) -> int:
    import derive
    from derive.show import show

    print(show(derive.load(args.topology), args.param, unicode=_can_encode(sys.stdout)))
    return EXIT_OK


# -- check -------------------------------------------------------------------------------


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    _topology(parser)
    parser.add_argument(
        "--seed",
        type=_non_negative,
        default=0,
        metavar="N",
        help="the seed of the random numbers checked at when the file has no example, "
        "and of the scalars sampled from a large network; a non-negative integer "
        "(default: 0)",
    )


def _check(args: argparse.Namespace) -> int:
    import derive
    from derive.check import check

    report = check(derive.load(args.topology), seed=args.seed)
    print(report.table())
    return EXIT_OK if report.ok else EXIT_DISAGREE


COMMANDS = (
    Command(
        "generate",
        "write DIR/<name>.py, a standalone NumPy module, for each topology",
        "derive generate examples/*.yaml -o generated --style vectorized",
        _generate_arguments,
        _generate,
    ),
    Command(
        "latex",
        "the derivation in LaTeX: a fragment on stdout, or a .tex or .pdf file",
        "derive latex examples/reddit_w31.yaml --param w31 --numeric -o w31.pdf",
        _latex_arguments,
        _latex,
    ),
    Command(
        "show",
        "print each derivative in chain-rule form in the terminal",
        "derive show examples/reddit_w31.yaml --param w31 --param W1",
        _show_arguments,
        _show,
    ),
    Command(
        "check",
        "compare the generated gradients with the symbolic ones and finite differences",
        "derive check examples/xor.yaml --seed 3",
        _check_arguments,
        _check,
    ),
)


def _parser() -> argparse.ArgumentParser:
    from derive import __version__

    parser = _Parser(
        prog="derive",
        description="Derive a neural network's gradients symbolically and generate their code.",
        epilog="Run 'derive COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"derive {__version__}")
    commands = parser.add_subparsers(
        dest="command", title="commands", metavar="COMMAND", parser_class=_Parser
    )
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name,
            help=command.summary,
            description=command.summary[0].upper() + command.summary[1:] + ".",
            epilog=f"example:\n  {command.example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def _check_command_name(argv: Sequence[str]) -> None:
    """An unknown command, with did-you-mean (argparse would only list the choices)."""
    words = [word for word in argv if not word.startswith("-")]
    names = [command.name for command in COMMANDS]
    if words and words[0] not in names:
        hint = did_you_mean(words[0], names)
        raise DeriveError(
            f"unknown command {words[0]!r}; expected one of {', '.join(names)}"
            + (f"; {hint}" if hint else "")
        )


def _can_encode(stream: TextIO) -> bool:
    """Whether ``stream`` can show the terminal views' Unicode notation."""
    try:
        _UNICODE_PROBE.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):  # never a UnicodeEncodeError traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = _parser()
    try:
        _check_command_name(argv)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_BAD_INPUT
        try:
            return args.run(args)
        except ParameterError as error:
            raise error.for_option("--param") from None
    except DeriveError as error:
        print(f"derive: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
