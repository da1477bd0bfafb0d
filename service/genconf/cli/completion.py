"""`genconf completion bash|zsh`: a shell completion script generated from the real
argument parser (`genconf.cli.main.build_parser`), so a new command, action, option
or choice completes without any edit here.

The parser is walked once into `Level`s (one per parser: ``genconf``, ``genconf
branch``, ``genconf branch commit``, ...) and each shell's script is that table as
``case`` statements plus a small driver that finds the level of the words typed so
far and offers, at the cursor: options after ``-``; the choices of the option
before the cursor (``-o`` -> table json yaml); the level's commands or actions; else
the choices of the positional argument there. Where nothing is known (a FILE, an
APP) the shell completes file names. Dynamic values (application names) would need
a server and are not offered.

argparse has no public way to list a parser's arguments, so `levels` reads
``parser._actions``, as every argparse completion tool does.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Final

from genconf.cli.framework import Command, Commands, Ctx, arg

# A word the shells' word splitting keeps whole: choices outside it are not offered.
PLAIN_WORD: Final = re.compile(r"^[\w.,:/@%+=-]+$")
SHELLS: Final = ("bash", "zsh")


@dataclass(frozen=True)
class Positional:
    """A positional argument: what it may be (empty: anything) and whether it repeats."""

    choices: tuple[str, ...]
    repeats: bool


@dataclass(frozen=True)
class Level:
    """One parser of the command tree, as a completion needs it."""

    path: tuple[str, ...]  # () for genconf itself, ("branch", "commit") for that action
    commands: dict[str, str]  # sub-command or action -> its help
    options: dict[str, str]  # every option string -> its help
    valued: dict[str, tuple[str, ...]]  # options that take a value -> their choices
    positionals: tuple[Positional, ...]

    @property
    def name(self) -> str:
        return " ".join(self.path)


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """An action's help on one line, with ``%(default)s`` and the like filled in."""
    text = action.help or ""
    if "%" in text:
        try:
            text = parser._get_formatter()._expand_help(action)
        except (KeyError, TypeError, ValueError):
            pass
    return " ".join(text.split())


def _words(values: Iterable[object] | None) -> tuple[str, ...]:
    return tuple(w for w in map(str, values or ()) if PLAIN_WORD.match(w))


def levels(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Level]:
    """Every parser under ``parser`` (itself first), depth first, in declaration order."""
    commands: dict[str, str] = {}
    options: dict[str, str] = {}
    valued: dict[str, tuple[str, ...]] = {}
    positionals: list[Positional] = []
    children: list[Level] = []
    repeated = False  # positionals after a repeating one cannot be told from its values
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                commands[name] = " ".join(helps.get(name, "").split())
                children += levels(sub, (*path, name))
        elif action.option_strings:
            for option in action.option_strings:
                options[option] = _help(parser, action)
                if action.nargs != 0:
                    valued[option] = _words(action.choices)
        elif not repeated:
            repeated = action.nargs in ("*", "+", argparse.REMAINDER)
            positionals.append(Positional(_words(action.choices), repeated))
    return [Level(path, commands, options, valued, tuple(positionals)), *children]


# -- the generated data functions, shared by both shells ---------------------------------


def _case(function: str, doc: str, arms: Sequence[tuple[str, str]], subject: str = '"$1"') -> str:
    """A shell function printing the body of the arm whose pattern matches."""
    lines = [f"{function}() {{  # {doc}", f"    case {subject} in"]
    lines += [f"        {pattern}) {body} ;;" for pattern, body in arms]
    lines += ["    esac", "}"]
    return "\n".join(lines)


def _echo(words: Iterable[str]) -> str:
    return "echo " + shlex.quote(" ".join(words))


def _choice_arms(table: Sequence[Level]) -> list[tuple[str, str]]:
    """Arms matching ``"LEVEL OPTION"`` or ``"LEVEL @N"`` (positional N, from 0); an
    option with the same choices on every level that has it matches on any level."""
    by_option: dict[str, set[tuple[str, ...]]] = {}
    for level in table:
        for option, choices in level.valued.items():
            by_option.setdefault(option, set()).add(choices)
    arms: dict[str, list[str]] = {}
    for option, variants in by_option.items():
        if len(variants) == 1:
            (choices,) = variants
            if choices:
                arms.setdefault(_echo(choices), []).append("*" + shlex.quote(" " + option))
            continue
        for level in table:
            if level.valued.get(option):
                key = shlex.quote(f"{level.name} {option}")
                arms.setdefault(_echo(level.valued[option]), []).append(key)
    for level in table:
        for i, positional in enumerate(level.positionals):
            if positional.choices:
                prefix = shlex.quote(f"{level.name} ")
                patterns = [f"{prefix}{at}" for at in _indexes(i, positional.repeats)]
                arms.setdefault(_echo(positional.choices), []).extend(patterns)
    return [("|".join(patterns), body) for body, patterns in arms.items()]


def _indexes(i: int, repeats: bool) -> tuple[str, ...]:
    """Glob patterns for ``@N``: N == i, or N >= i for a repeating positional."""
    if not repeats:
        return (f"@{i}",)
    if i == 0:
        return ("@*",)
    return (f"@[{i}-9]", "@[1-9][0-9]*") if i < 10 else tuple(f"@{n}" for n in range(i, i + 20))


def _data(table: Sequence[Level]) -> str:
    commands = [(shlex.quote(lv.name), _echo(lv.commands)) for lv in table if lv.commands]
    options = [(shlex.quote(lv.name), _echo(lv.options)) for lv in table if lv.options]
    valued = [(shlex.quote(lv.name), _echo(lv.valued)) for lv in table if lv.valued]
    return "\n\n".join(
        (
            _case("_genconf_commands", "the commands or actions of level $1", commands),
            _case("_genconf_options", "every option of level $1", options),
            _case("_genconf_valued", "the options of level $1 that take a value", valued),
            _case(
                "_genconf_choices",
                "what the option $2 of level $1 (or its positional @N) may be",
                _choice_arms(table),
                '"$1 $2"',
            ),
        )
    )


def _header(shell: str) -> str:
    return (
        f"# {shell} completion for genconf {version('genconf')}, generated from its argument\n"
        f"# parser by `genconf completion {shell}`; regenerate it after an upgrade."
    )


# -- bash ------------------------------------------------------------------------------

BASH_DRIVER: Final = r"""
_genconf() {
    local cur="${COMP_WORDS[COMP_CWORD]}" level="" word="" option="" i npos=0 skip=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        # bash splits --output=json at the '=': the value follows it.
        [[ "$word" == "=" ]] && continue
        if ((skip)); then
            skip=0
            continue
        fi
        case "$word" in
            --*=*) ;;
            -*)
                if [[ " $(_genconf_valued "$level") " == *" $word "* ]]; then
                    skip=1
                    option="$word"
                fi
                ;;
            *)
                if ((npos == 0)) && [[ " $(_genconf_commands "$level") " == *" $word "* ]]; then
                    level="${level:+$level }$word"
                else
                    npos=$((npos + 1))
                fi
                ;;
        esac
    done
    local IFS=$' \t\n' words
    if ((skip)); then
        words="$(_genconf_choices "$level" "$option")"
    elif [[ "$cur" == -* ]]; then
        words="$(_genconf_options "$level")"
    else
        words="$(_genconf_commands "$level")"
        [[ -n "$words" ]] || words="$(_genconf_choices "$level" "@$npos")"
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}

complete -o default -F _genconf genconf
"""


def bash_script(parser: argparse.ArgumentParser) -> str:
    """Source it (``source <(genconf completion bash)``) or install it as the
    bash-completion file ``genconf``."""
    return f"{_header('bash')}\n\n{_data(levels(parser))}\n{BASH_DRIVER}"


# -- zsh -------------------------------------------------------------------------------


def _described(table: Sequence[Level]) -> str:
    """``_genconf_described LEVEL commands|options``: ``word:help`` lines for zsh's
    `_describe`, which shows each word with its help."""

    def lines(items: dict[str, str]) -> str:
        entries = (f"{w}:{h}" if h else w for w, h in items.items())
        return "print -rl -- " + " ".join(shlex.quote(e) for e in entries)

    arms = [(shlex.quote(f"{lv.name} commands"), lines(lv.commands)) for lv in table if lv.commands]
    arms += [(shlex.quote(f"{lv.name} options"), lines(lv.options)) for lv in table if lv.options]
    return _case("_genconf_described", "word:help lines for _describe", arms, '"$1 $2"')


ZSH_DRIVER: Final = r"""
_genconf_offer() {  # the level's $2 (commands or options), each with its help
    local -a entries
    entries=("${(@f)$(_genconf_described "$1" "$2")}")
    _describe -t "$2" "genconf $2" entries
}

_genconf_values() {  # words, else file names
    local -a found
    found=(${=1})
    if ((${#found})); then
        compadd -- "${found[@]}"
    else
        _files
    fi
}

_genconf() {
    local cur="${words[CURRENT]}" level="" word="" option="" i npos=0 skip=0
    for ((i = 2; i < CURRENT; i++)); do
        word="${words[i]}"
        if ((skip)); then
            skip=0
            continue
        fi
        case "$word" in
            --*=*) ;;
            -*)
                if [[ " $(_genconf_valued "$level") " == *" $word "* ]]; then
                    skip=1
                    option="$word"
                fi
                ;;
            *)
                if ((npos == 0)) && [[ " $(_genconf_commands "$level") " == *" $word "* ]]; then
                    level="${level:+$level }$word"
                else
                    npos=$((npos + 1))
                fi
                ;;
        esac
    done
    if ((skip)); then
        _genconf_values "$(_genconf_choices "$level" "$option")"
    elif [[ "$cur" == -* ]]; then
        _genconf_offer "$level" options
    elif [[ -n "$(_genconf_commands "$level")" ]]; then
        _genconf_offer "$level" commands
    else
        _genconf_values "$(_genconf_choices "$level" "@$npos")"
    fi
}

if [[ "${zsh_eval_context[-1]}" == loadautofunc ]]; then
    _genconf "$@"  # autoloaded from a file _genconf in $fpath
else
    compdef _genconf genconf  # sourced
fi
"""


def zsh_script(parser: argparse.ArgumentParser) -> str:
    """Install it as ``_genconf`` in a directory of ``$fpath`` before ``compinit``, or
    source it after ``compinit``."""
    return (
        f"#compdef genconf\n{_header('zsh')}\n\n{_data(levels(parser))}\n\n"
        f"{_described(levels(parser))}\n{ZSH_DRIVER}"
    )


SCRIPTS: Final[dict[str, Callable[[argparse.ArgumentParser], str]]] = {
    "bash": bash_script,
    "zsh": zsh_script,
}


INSTALL: Final = """\
Print a shell completion script for genconf's commands, actions, options and choices.

bash (needs the bash-completion package for the file way):
  source <(genconf completion bash)          # in ~/.bashrc
  genconf completion bash > ~/.local/share/bash-completion/completions/genconf
zsh (after compinit in ~/.zshrc):
  source <(genconf completion zsh)           # in ~/.zshrc
  genconf completion zsh > "${fpath[1]}/_genconf"   # or any directory of $fpath
Regenerate the script after upgrading genconf."""


def register(commands: Commands, root: argparse.ArgumentParser) -> None:
    """Unlike the other groups, this one needs ``root``, the whole parser (complete by
    the time the command runs): `genconf.cli.main` passes it, as nothing may import
    main."""

    async def _completion(ctx: Ctx, args: argparse.Namespace) -> int:
        sys.stdout.write(SCRIPTS[args.shell](root))
        return 0

    commands.add_all(
        Command(
            "completion",
            _completion,
            "print a shell completion script (bash or zsh)",
            ["bash", "zsh"],
            [arg("shell", choices=SHELLS, help="the shell to complete in")],
            description=INSTALL,
        )
    )
