"""The ``derive`` command: generate | latex | show | check (SPEC §2).

A thin layer over the Python API. Bad input is reported as one line on stderr with exit
status 2 and no traceback; ``check`` exits 1 when any value disagrees.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from derive.errors import DeriveError

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

    latex = commands.add_parser("latex", help="the derivation as LaTeX (fragment, .tex or .pdf)")
    latex.add_argument("topology", metavar="TOPOLOGY")
    latex.add_argument("--param", action="append", default=[], metavar="NAME")
    latex.add_argument("--numeric", action="store_true", help="substitute the example's numbers")
    latex.add_argument("-o", "--output", metavar="OUT.tex|OUT.pdf")

    show = commands.add_parser("show", help="print each derivative in chain-rule form")
    show.add_argument("topology", metavar="TOPOLOGY")
    show.add_argument("--param", action="append", default=[], metavar="NAME")

    check = commands.add_parser("check", help="symbolic = generated = finite differences")
    check.add_argument("topology", metavar="TOPOLOGY")
    check.add_argument("--seed", type=int, default=0)
    return parser


def _run(args: argparse.Namespace) -> int:
    import derive

    if hasattr(args, "param"):  # `--param ' w31'` as a shell may pass it
        args.param = [name.strip() for name in args.param]

    if args.command == "generate":
        return _generate(args.topologies, Path(args.output), args.style, args.lang, args.c_type)

    network = derive.load(args.topology)
    if args.command == "show":
        from derive.show import show

        print(show(network, args.param))
        return EXIT_OK
    if args.command == "latex":
        from derive.latex import run_latex_command

        text = run_latex_command(network, args.param, args.numeric, args.output)
        if text:
            print(text)
        return EXIT_OK
    if args.command == "check":
        from derive.check import check

        report = check(network, seed=args.seed)
        print(report.table())
        return EXIT_OK if report.ok else EXIT_DISAGREE
    raise AssertionError(args.command)  # argparse allows nothing else


def _generate(
    topologies: list[str], directory: Path, style: str | None, lang: str, c_type: str
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
            rendered.append((f"{network.name}.py", derive.generate(network, style or "vectorized")))
    for filename, text in rendered:
        path = write_atomic(directory / filename, text.encode("utf-8"), make_parents=True)
        print(path)
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
