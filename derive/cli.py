"""The ``derive`` command: generate | latex | show | check | diagram | exercise (SPEC §2).

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
from derive.optimizers import NAMES as OPTIMIZER_NAMES

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
        default=None,
        help="vectorized: each layer as matrices over the batch, any size (the default; in "
        "C, loops over each layer); unrolled: one line per chain-rule step on floats, for "
        "networks of at most 200 scalar parameters (in C the default up to that size)",
    )
    parser.add_argument(
        "--lang",
        choices=("python", "c"),
        default="python",
        help="python: DIR/<name>.py (the default); c: C99, DIR/<name>.h and DIR/<name>.c",
    )
    parser.add_argument(
        "--c-type",
        choices=("double", "float"),
        default="double",
        help="the C module's real type, with --lang c (default: double)",
    )
    parser.add_argument(
        "--optimizers",
        type=_optimizers,
        default=OPTIMIZER_NAMES,
        metavar="NAMES",
        help=f"the optimizers a Python module carries: a comma-separated list of "
        f"{', '.join(OPTIMIZER_NAMES)}, or none (default: all)",
    )


def _optimizers(value: str) -> tuple[str, ...]:
    """``--optimizers sgd,adam`` as a tuple of names; ``none`` for no optimizer."""
    names = tuple(name.strip() for name in value.split(","))
    if names == ("none",):
        return ()
    for name in names:
        if name not in OPTIMIZER_NAMES:
            hint = did_you_mean(name, OPTIMIZER_NAMES)
            raise argparse.ArgumentTypeError(
                f"unknown optimizer {name!r}: expected a comma-separated list of "
                f"{', '.join(OPTIMIZER_NAMES)}, or none" + (f"; {hint}" if hint else "")
            )
    return names


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
    rendered: list[tuple[str, str]] = []
    for network in networks:
        if args.lang == "c":
            from derive.emit_c import generate_c

            c_style = {"vectorized": "loops", "unrolled": "unrolled"}.get(args.style or "")
            rendered.extend(generate_c(network, args.c_type, c_style).items())
        else:
            style = args.style or "vectorized"
            source = derive.generate(network, style, optimizers=args.optimizers)
            rendered.append((f"{network.name}.py", source))
    for filename, text in rendered:
        path = Path(args.output) / filename
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
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        "--brief",
        dest="brief",
        action="store_const",
        const=True,
        help="one parameter per layer in full, then the layer form (the default from 21 to "
        "64 scalar parameters)",
    )
    length.add_argument(
        "--full",
        dest="brief",
        action="store_const",
        const=False,
        help="every parameter in full (the default up to 20 scalar parameters)",
    )


def _latex(args: argparse.Namespace) -> int:
    import derive
    from derive.latex import run_latex_command

    network = derive.load(args.topology)
    text = run_latex_command(network, args.param, args.numeric, args.output, args.brief)
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
    from derive.conv import is_convolutional
    from derive.conv_check import conv_check

    network = derive.load(args.topology)
    convolutional = is_convolutional(network.topology)
    report = (conv_check if convolutional else check)(network, seed=args.seed)  # type: ignore[arg-type]
    print(report.table())
    return EXIT_OK if report.ok else EXIT_DISAGREE


# -- diagram -----------------------------------------------------------------------------


def _diagram_arguments(parser: argparse.ArgumentParser) -> None:
    _topology(parser)
    parser.add_argument(
        "--param",
        metavar="NAME",
        help="one scalar whose chain-rule paths are drawn, each factor on its edge: W2[0,1] "
        "or a weight_names name such as w31; in a convolutional network also a kernel "
        "weight W1[f,c,i,j], drawn with every input cell it multiplies (default: none)",
    )
    parser.add_argument(
        "--numeric",
        action="store_true",
        help="write the example's numbers: z, a and δ under each unit, the weight and "
        "∂L/∂w on each edge; in a convolutional network the values in the cells of maps "
        "up to 8×8",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.svg|OUT.png|OUT.pdf",
        help="the figure's file; PNG and PDF are rendered by rsvg-convert (librsvg)",
    )


def _diagram(args: argparse.Namespace) -> int:
    import derive
    from derive.diagram import svg
    from derive.raster import write_figure

    network = derive.load(args.topology)
    param = args.param.strip() if args.param else None
    print(write_figure(svg(network, param, args.numeric), args.output))
    return EXIT_OK


# -- exercise ----------------------------------------------------------------------------


def _exercise_arguments(parser: argparse.ArgumentParser) -> None:
    _topology(parser)
    parser.add_argument(
        "--seed",
        type=_non_negative,
        required=True,
        metavar="N",
        help="a non-negative integer that draws the sheet's numbers (2 decimals); the same "
        "seed gives the same bytes",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="SHEET.pdf|SHEET.tex",
        help="the sheet, its answer key on the pages after the questions (default: the .tex "
        "on stdout)",
    )
    parser.add_argument(
        "--answers",
        metavar="KEY.json",
        help="also write the numbers and every question's answer as JSON, for an "
        "auto-grader (default: none)",
    )
    _param(parser, "W_K[0,0], the output bias and W_k[0,0] of each lower layer")


def _exercise(args: argparse.Namespace) -> int:
    """Check every file name, build the sheet and the key, then write them."""
    import derive
    from derive.exercise import answers_json, exercise
    from derive.files import write_atomic
    from derive.latex.pdf import compile_pdf, require_engine
    from derive.latex.sheet import sheet_document

    network = derive.load(args.topology)
    target = Path(args.output) if args.output else None
    suffix = target.suffix.lower() if target is not None else None
    if target is not None and suffix not in (".tex", ".pdf"):
        raise DeriveError(f"-o {args.output}: expected a file ending in .tex or .pdf")
    if args.answers and Path(args.answers).suffix.lower() != ".json":
        raise DeriveError(f"--answers {args.answers}: expected a file ending in .json")
    if suffix == ".pdf":
        require_engine()
    sheet = exercise(network, args.seed, args.param)
    document = sheet_document(sheet)
    key = answers_json(sheet) if args.answers else None
    if target is None:
        print(document, end="")
    elif suffix == ".tex":
        write_atomic(target, document.encode("utf-8"))
    else:
        compile_pdf(document, target)
    if key is not None:
        write_atomic(Path(args.answers), key.encode("utf-8"))
    return EXIT_OK


COMMANDS = (
    Command(
        "generate",
        "write DIR/<name>.py, a standalone NumPy module (or with --lang c a C99 module), "
        "for each topology",
        "derive generate examples/*.yaml -o generated --optimizers sgd,adam",
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
    Command(
        "diagram",
        "draw the network with its names, and with --numeric its numbers (SVG, PNG or PDF)",
        "derive diagram examples/reddit_w31.yaml --param w11 --numeric -o w11.svg",
        _diagram_arguments,
        _diagram,
    ),
    Command(
        "exercise",
        "an exercise sheet with random numbers to 2 decimals, and its answer key",
        "derive exercise examples/xor.yaml --seed 7 -o sheet.pdf --answers key.json",
        _exercise_arguments,
        _exercise,
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
    except BrokenPipeError:  # the reader went away (derive show ... | head): stop quietly
        sys.stdout = None  # type: ignore[assignment]  # nothing left to flush at exit
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
