"""The command line documents itself: every subcommand and option has a help text, `--version` answers."""

from __future__ import annotations

import argparse

from benchmark import __version__
from benchmark.cli import build_parser, main


def _options_without_help(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {choice.dest for choice in action._choices_actions if choice.help}
            for name, sub in action.choices.items():
                if name not in helped:
                    missing.append(" ".join((*path, name)))
                missing += _options_without_help(sub, (*path, name))
        elif action.help is None:
            missing.append(" ".join((*path, *(action.option_strings or [action.dest]))))
    return missing


def test_every_subcommand_and_option_has_help():
    assert _options_without_help(build_parser()) == []


def test_the_help_walk_finds_an_undocumented_option():
    parser = build_parser()
    parser.add_argument("--undocumented")
    assert _options_without_help(parser) == ["--undocumented"]


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tedbench {__version__}"
