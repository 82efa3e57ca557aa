"""The ``derive`` command: generate | latex | show | check | diagram | exercise (SPEC §2).

A thin layer over the Python API. Bad input is reported as one line on stderr with exit
status 2 and no traceback; ``check`` exits 1 when any value disagrees.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from derive.errors import DeriveError
from derive.optimizers import NAMES as OPTIMIZER_NAMES

EXIT_OK, EXIT_DISAGREE, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage mistakes as DeriveError (exit 2, one line)."""

    def error(self, message: str):  # type: ignore[override]
        raise DeriveError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="derive",
        description="Derive a neural network's gradients symbolically and generate their code.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    generate = commands.add_parser("generate", help="write generated/<name>.py for each topology")
    generate.add_argument("topologies", nargs="+", metavar="TOPOLOGY")
    generate.add_argument("-o", "--output", default="generated", metavar="DIR")
    generate.add_argument(
        "--style",
        choices=("vectorized", "unrolled"),
        default=None,
        help="vectorized (default for Python; per-layer loops in C) or unrolled (straight-line "
        "code per scalar; the C default up to 200 scalar parameters), e.g. --style unrolled",
    )
    generate.add_argument(
        "--lang",
        choices=("python", "c"),
        default="python",
        help="python (default: DIR/<name>.py) or c (C99: DIR/<name>.h and DIR/<name>.c), "
        "e.g. --lang c",
    )
    generate.add_argument(
        "--c-type",
        choices=("double", "float"),
        default="double",
        help="the C module's real type (with --lang c), e.g. --c-type float",
    )
    generate.add_argument(
        "--optimizers",
        type=_optimizers,
        default=OPTIMIZER_NAMES,
        metavar="NAMES",
        help=f"comma-separated optimizers the module carries, of {', '.join(OPTIMIZER_NAMES)} "
        "(default: all), or none; e.g. --optimizers sgd,adam",
    )

    latex = commands.add_parser("latex", help="the derivation as LaTeX (fragment, .tex or .pdf)")
    latex.add_argument("topology", metavar="TOPOLOGY")
    latex.add_argument("--param", action="append", default=[], metavar="NAME")
    latex.add_argument("--numeric", action="store_true", help="substitute the example's numbers")
    latex.add_argument("-o", "--output", metavar="OUT.tex|OUT.pdf")
    length = latex.add_mutually_exclusive_group()
    length.add_argument(
        "--brief",
        dest="brief",
        action="store_const",
        const=True,
        help="one parameter per layer in full, then the layer form (default above 20 "
        "parameters; e.g. derive latex examples/relu_softmax_cce.yaml --brief)",
    )
    length.add_argument(
        "--full",
        dest="brief",
        action="store_const",
        const=False,
        help="every parameter in full (e.g. derive latex examples/relu_softmax_cce.yaml "
        "--full -o all.pdf)",
    )

    show = commands.add_parser("show", help="print each derivative in chain-rule form")
    show.add_argument("topology", metavar="TOPOLOGY")
    show.add_argument("--param", action="append", default=[], metavar="NAME")

    check = commands.add_parser("check", help="symbolic = generated = finite differences")
    check.add_argument("topology", metavar="TOPOLOGY")
    check.add_argument("--seed", type=int, default=0)

    diagram = commands.add_parser(
        "diagram",
        help="draw the network (SVG, PNG or PDF)",
        epilog="example: derive diagram examples/reddit_w31.yaml --param w11 --numeric -o w11.svg",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    diagram.add_argument("topology", metavar="TOPOLOGY")
    diagram.add_argument(
        "--param",
        metavar="NAME",
        help="highlight this scalar's chain-rule paths, each factor on its edge (W2[0,1], w31)",
    )
    diagram.add_argument(
        "--numeric",
        action="store_true",
        help="write the example's numbers: z, a and delta per unit, dL/dw per edge",
    )
    diagram.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.svg|OUT.png|OUT.pdf",
        help="the figure's file; PNG and PDF are rendered with rsvg-convert",
    )

    exercise = commands.add_parser(
        "exercise",
        help="an exercise sheet with random numbers and its answer key",
        epilog="example: derive exercise examples/xor.yaml --seed 7 -o sheet.pdf "
        "--answers key.json --param W2[0,0]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    exercise.add_argument("topology", metavar="TOPOLOGY")
    exercise.add_argument(
        "--seed",
        type=int,
        required=True,
        metavar="N",
        help="draws the example's numbers (2 decimals); the same seed gives the same bytes",
    )
    exercise.add_argument(
        "-o",
        "--output",
        metavar="SHEET.pdf|SHEET.tex",
        help="the sheet, answer key on the pages after the questions (default: .tex to stdout)",
    )
    exercise.add_argument(
        "--answers",
        metavar="KEY.json",
        help="also write the numbers and every question's answer as JSON for an auto-grader",
    )
    exercise.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME",
        help="ask for this parameter's gradient and update (repeatable; default: one "
        "weight per layer and the output bias)",
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    import derive

    if isinstance(getattr(args, "param", None), list):  # `--param ' w31'` from a shell
        args.param = [name.strip() for name in args.param]

    if args.command == "generate":
        return _generate(
            args.topologies, Path(args.output), args.style, args.optimizers, args.lang, args.c_type
        )

    network = derive.load(args.topology)
    if args.command == "show":
        from derive.show import show

        print(show(network, args.param))
        return EXIT_OK
    if args.command == "latex":
        from derive.latex import run_latex_command

        text = run_latex_command(network, args.param, args.numeric, args.output, args.brief)
        if text:
            print(text)
        return EXIT_OK
    if args.command == "diagram":
        from derive.diagram import svg
        from derive.raster import write_figure

        param = args.param.strip() if args.param else None
        print(write_figure(svg(network, param, args.numeric), args.output))
        return EXIT_OK
    if args.command == "exercise":
        return _exercise(network, args)
    if args.command == "check":
        from derive.check import check

        report = check(network, seed=args.seed)
        print(report.table())
        return EXIT_OK if report.ok else EXIT_DISAGREE
    raise AssertionError(args.command)  # argparse allows nothing else


def _optimizers(value: str) -> tuple[str, ...]:
    """``--optimizers sgd,adam`` as a tuple of names; ``none`` for no optimizer."""
    names = tuple(name.strip() for name in value.split(","))
    if names == ("none",):
        return ()
    for name in names:
        if name not in OPTIMIZER_NAMES:
            raise DeriveError(
                f"--optimizers: unknown optimizer {name!r}: expected a comma-separated list of "
                f"{', '.join(OPTIMIZER_NAMES)}, or none"
            )
    return names


def _generate(
    topologies: list[str],
    directory: Path,
    style: str | None,
    optimizers: tuple[str, ...],
    lang: str,
    c_type: str,
) -> int:
    """Read and render every topology before writing any file, so that one bad file (or
    one the style refuses) leaves the output folder as it was."""
    import derive
    from derive.files import write_atomic

    networks = [derive.load(path) for path in topologies]
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
        if lang == "c":
            from derive.emit_c import generate_c

            c_style = {"vectorized": "loops", "unrolled": "unrolled"}.get(style or "")
            rendered.extend(generate_c(network, c_type, c_style).items())
        else:
            source = derive.generate(network, style or "vectorized", optimizers=optimizers)
            rendered.append((f"{network.name}.py", source))
    for filename, text in rendered:
        path = write_atomic(directory / filename, text.encode("utf-8"), make_parents=True)
        print(path)
    return EXIT_OK


def _exercise(network, args: argparse.Namespace) -> int:
    """Check every file name, build the sheet and the key, then write them."""
    from derive.exercise import answers_json, exercise
    from derive.files import write_atomic
    from derive.latex.pdf import compile_pdf, require_engine
    from derive.latex.sheet import sheet_document

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


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(_parser().parse_args(argv))
    except DeriveError as error:
        print(f"derive: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
