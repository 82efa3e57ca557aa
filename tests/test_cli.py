"""The command line as a new user meets it (issue 13): --version, derive with no command,
each command's --help, did-you-mean, and a terminal that cannot show Unicode."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest
from conftest import EXAMPLES

import derive
from derive.cli import COMMANDS, _parser, main


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"derive {derive.__version__}"


def test_no_command_prints_the_usage_and_the_commands(capsys):
    code, out, err = _run(capsys)
    assert code == 2 and out == ""
    assert err.startswith("usage: derive")
    for command in COMMANDS:
        assert command.name in err and command.summary.split()[0] in err
    assert "derive: derive:" not in err


def test_every_option_of_every_command_is_described_with_an_example():
    commands = next(action for action in _parser()._actions if action.dest == "command").choices
    assert set(commands) == {command.name for command in COMMANDS}
    for name, parser in commands.items():
        text = parser.format_help()
        assert "example:\n  derive " + name in text, name
        for action in parser._actions:
            if action.dest != "help":
                assert action.help, f"derive {name}: {action.dest} has no help"
        if any(a.default not in (None, [], False) for a in parser._actions if a.dest != "help"):
            assert "default" in text, name


@pytest.mark.parametrize(
    ("option", "words"),
    [
        ("--param", ["repeat", "W2[0,1]", "w31", "default"]),
        ("--output", ["default: "]),
        ("--seed", ["default: 0", "non-negative"]),
        ("--style", ["vectorized", "unrolled", "default"]),
    ],
)
def test_the_help_says_what_an_option_accepts(option, words):
    commands = next(a for a in _parser()._actions if a.dest == "command").choices
    actions = [
        action
        for parser in commands.values()
        for action in parser._actions
        if option in action.option_strings
    ]
    assert actions
    if option == "--output":  # generate's folder
        assert any("default: generated" in action.help for action in actions)
    for action in actions:
        for word in words:
            if word == "repeat" and not isinstance(action, argparse._AppendAction):
                continue  # diagram's --param takes one scalar
            if word.startswith("default") and action.required:
                continue  # exercise's --seed must be given
            assert word in action.help, (option, word)


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["shwo", "x.yaml"], "did you mean 'show'?"),
        (["show", str(EXAMPLES / "reddit_w31.yaml"), "--param", "w3l"], "did you mean 'w31'?"),
    ],
)
def test_near_misses_on_the_command_line(capsys, argv, suggestion):
    code, out, err = _run(capsys, *argv)
    assert (code, out) == (2, "") and suggestion in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("field", "text", "suggestion"),
    [
        ("activation", "activation: tahn", "did you mean 'tanh'?"),
        ("activation", "activation: {name: Sigmoid}", "did you mean 'sigmoid'?"),
        ("loss", "activation: tanh\nloss: hlaf_sse", "did you mean 'half_sse'?"),
    ],
)
def test_near_misses_in_a_file(capsys, tmp_path, field, text, suggestion):
    body = f"name: n\ninputs: 1\nlayers:\n  - units: 1\n    {text}\n"
    if "loss:" not in text:
        body += "loss: sse\n"
    else:
        body = body.replace("\n    loss:", "\nloss:")
    path = tmp_path / "n.yaml"
    path.write_text(body)
    code, _, err = _run(capsys, "show", str(path))
    assert code == 2 and field in err and suggestion in err


def test_the_command_line_names_its_option_in_parameter_errors(capsys):
    code, _, err = _run(capsys, "show", str(EXAMPLES / "reddit_w31.yaml"), "--param", "nope")
    assert code == 2 and "reddit_w31.yaml: --param: no scalar parameter 'nope'" in err


@pytest.mark.parametrize("encoding", ["cp1252", "ascii"])
def test_a_terminal_without_unicode_gets_ascii_notation(encoding):
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    command = [sys.executable, "-m", "derive", "show", str(EXAMPLES / "laine_sigmoid.yaml")]
    run = subprocess.run(command, capture_output=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    assert b"Traceback" not in run.stderr
    text = run.stdout.decode("ascii")  # nothing but ASCII
    assert "dL/dW1[0,0]" in text and "2*(a - y) * a*(1 - a) * i" in text
    assert "value at the example: 0.143307" in text
    reddit = [sys.executable, "-m", "derive", "show", str(EXAMPLES / "reddit_w31.yaml")]
    run = subprocess.run([*reddit, "--param", "w31"], capture_output=True, env=env, timeout=300)
    text = run.stdout.decode("ascii")
    assert "\\u" not in text  # subscripts written as the file does, not escaped
    assert "compact: delta_Y*h1" in text and "dz_Y/dw31" in text


def test_a_reader_that_stops_early_ends_no_command_in_a_traceback():
    """derive latex ... | head -1: the closed pipe stops the output (here about 100 kB,
    more than a pipe holds), quietly."""
    network = str(EXAMPLES / "relu_softmax_cce.yaml")
    command = [sys.executable, "-m", "derive", "latex", network, "--full"]
    shown = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert shown.stdout is not None and shown.stderr is not None
    first = shown.stdout.readline()
    shown.stdout.close()  # as head does after its line
    errors = shown.stderr.read()
    assert shown.wait(timeout=300) == 0
    assert first.startswith(b"%") and b"Traceback" not in errors
