"""The command line: global options, help for every command, exit codes, stdout discipline."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
import torch

from transfigure import __version__
from transfigure.cli import COMMANDS, main
from transfigure.cli_support import AliasOption, PartialFailure, pass_state


def test_version(runner):
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(runner, name):
    result = runner.invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and name in result.output


def test_group_help_lists_every_command(runner):
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output
    for option in ("--device", "--precision", "--seed", "--quiet", "--version"):
        assert option in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_a_usage_error(runner):
    result = runner.invoke(main, ["--device", "cuda", "datasets", "list"])
    assert result.exit_code == 2
    assert "no CUDA device" in result.stderr
    assert "Traceback" not in result.output


def test_bad_option_value_is_a_usage_error(runner):
    result = runner.invoke(main, ["--precision", "fp8", "train", "--help"])
    assert result.exit_code == 2
    assert "fp8" in result.stderr


# Throw-away commands exercise the exit-code mapping of the group itself.
@main.command("_test_ok", hidden=True)
@pass_state
def _ok(state):
    state.info("a log line")
    state.echo_result("out/a.png")


@main.command("_test_partial", hidden=True)
@pass_state
def _partial(state):
    state.error("bad.jpg: not an image")
    state.echo_result("out/good.png")
    raise PartialFailure(1, 2)


@main.command("_test_interrupt", hidden=True)
def _interrupt():
    raise KeyboardInterrupt


@main.command("_test_image_error", hidden=True)
def _image_error():
    from transfigure.images import ImageError

    raise ImageError("photo.jpg", "truncated file")


@main.command("_test_state", hidden=True)
@click.pass_context
def _state(ctx):
    state = ctx.obj
    click.echo(f"{state.device.type} {state.precision} {state.seed} {state.quiet}")


def test_stdout_carries_only_results(runner):
    result = runner.invoke(main, ["_test_ok"])
    assert result.exit_code == 0
    assert result.stdout == "out/a.png\n"
    assert "a log line" in result.stderr


def test_quiet_silences_logs_but_not_errors(runner):
    result = runner.invoke(main, ["--quiet", "_test_ok"])
    assert result.exit_code == 0 and result.stderr == ""
    result = runner.invoke(main, ["-q", "_test_partial"])
    assert "bad.jpg: not an image" in result.stderr


def test_partial_failure_exits_1_after_writing_the_rest(runner):
    result = runner.invoke(main, ["_test_partial"])
    assert result.exit_code == 1
    assert result.stdout == "out/good.png\n"
    assert "bad.jpg" in result.stderr and "1 of 2 input(s) failed" in result.stderr


def test_interrupt_exits_130(runner):
    result = runner.invoke(main, ["_test_interrupt"])
    assert result.exit_code == 130


def test_library_input_errors_are_messages_not_tracebacks(runner):
    pytest.importorskip("transfigure.images")
    result = runner.invoke(main, ["_test_image_error"])
    assert result.exit_code == 1
    assert "photo.jpg: truncated file" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_global_options_reach_commands(runner):
    result = runner.invoke(
        main, ["--device", "cpu", "--precision", "bf16", "--seed", "3", "_test_state"]
    )
    assert result.exit_code == 0
    assert result.stdout.strip() == "cpu bf16 3 False"


@main.command("_test_own_seed", hidden=True)
@click.option("--seed", type=int, default=None)
@click.option("--name", default=None)
@click.argument("rest", nargs=-1)
@click.pass_context
def _own_seed(ctx, seed, name, rest):
    click.echo(f"global {ctx.obj.seed} {ctx.obj.quiet} own {seed} {name} {list(rest)}")


@main.group("_test_group", hidden=True)
def _group():
    pass


@_group.command("sub")
@click.option("--seed", type=int, default=None)
@click.pass_context
def _sub(ctx, seed):
    click.echo(f"global {ctx.obj.seed} {ctx.obj.precision} {ctx.obj.quiet} own {seed}")


@pytest.mark.parametrize(
    "args",
    [
        ["_test_state", "--device", "cpu", "--precision", "bf16", "--seed", "3", "--quiet"],
        ["_test_state", "--device=cpu", "--precision=bf16", "--seed=3", "-q"],
        ["--device", "cpu", "_test_state", "--precision", "bf16", "-q", "--seed", "3"],
    ],
)
def test_global_options_after_the_command(runner, args):
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "cpu bf16 3 True"


def test_options_a_command_defines_itself_keep_their_meaning_there(runner):
    result = runner.invoke(main, ["--seed", "1", "_test_own_seed", "--seed", "5", "a", "-q"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "global 1 True own 5 None ['a']"
    # An option's value is never taken for a global option, nor is anything after "--".
    result = runner.invoke(main, ["_test_own_seed", "--name", "--quiet", "--", "x", "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "global None False own None --quiet ['x', '--quiet']"
    # In a nested group the subcommand's own options count too.
    result = runner.invoke(main, ["_test_group", "sub", "--seed", "2", "--precision", "bf16"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "global None bf16 False own 2"


def test_global_option_after_a_real_command_reaches_the_group(runner, tmp_path):
    # Before, stylize answered "No such option '--precision'"; now the group checks the value.
    result = runner.invoke(
        main,
        ["stylize", str(tmp_path / "a.jpg"), "--style", "b.jpg", "-o", "c.png"]
        + ["--precision", "fp8"],
    )
    assert result.exit_code == 2
    assert "No such option" not in result.stderr
    assert "'--precision'" in result.stderr and "fp8" in result.stderr


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["-h"], ["demo", "--help"], ["train", "-h"]]
)
def test_help_and_version_do_not_import_torch(args):
    code = (
        "import sys\n"
        "from transfigure.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as exit:\n"
        "    assert exit.code in (0, None), exit.code\n"
        "heavy = sorted(m for m in ('torch', 'torchvision') if m in sys.modules)\n"
        "print('imported:', heavy, file=sys.stderr)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert "imported: []" in completed.stderr
    assert completed.stdout  # the help or the version was printed


def _commands_outside_train():
    """(name, command) for every command and subcommand, but train (its options are its own)."""
    ctx = click.Context(main)
    for name in sorted(COMMANDS):
        if name == "train":
            continue
        command = main.get_command(ctx, name)
        if isinstance(command, click.Group):
            for sub in sorted(command.commands):
                yield f"{name} {sub}", command.commands[sub]
        else:
            yield name, command


def test_dash_o_means_output_everywhere():
    seen = []
    for name, command in _commands_outside_train():
        for param in command.params:
            if "-o" in param.opts:
                assert "--output" in param.opts, f"{name}: -o is {param.opts}"
                seen.append(name)
    assert {"translate", "stylize", "sample", "models import", "datasets download"} <= set(seen)


def test_usage_and_help_text_name_the_same_arguments(runner):
    for name, command in _commands_outside_train():
        result = runner.invoke(main, [*name.split(), "--help"])
        assert result.exit_code == 0, result.output
        usage, _, text = result.stdout.partition("\n")
        for param in command.params:
            if isinstance(param, click.Argument):
                metavar = param.make_metavar(click.Context(command)).removesuffix("...")
                assert metavar in usage, f"{name}: {metavar} not in {usage!r}"
                assert metavar in " ".join(text.split()), f"{name}: help never names {metavar}"


@main.command("_test_alias", hidden=True)
@click.option("-o", "--output", "out", cls=AliasOption, aliases=("--out",), required=True)
def _alias(out):
    click.echo(out)


def test_alias_options_accept_old_spellings_without_showing_them(runner):
    assert runner.invoke(main, ["_test_alias", "--out", "a.png"]).stdout == "a.png\n"
    assert runner.invoke(main, ["_test_alias", "-o", "b.png"]).stdout == "b.png\n"
    help_text = runner.invoke(main, ["_test_alias", "--help"]).stdout
    assert "-o, --output TEXT" in help_text and "--out " not in help_text
    missing = runner.invoke(main, ["_test_alias"])
    assert missing.exit_code == 2
    assert "Missing option '-o' / '--output'." in missing.stderr


def test_old_output_spellings_still_parse(runner, tmp_path):
    help_text = runner.invoke(main, ["datasets", "download", "--help"]).stdout
    assert "--output ROOT" in help_text and "--root" not in help_text
    result = runner.invoke(main, ["datasets", "download", "nothing", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "unknown dataset" in result.stderr.lower(), result.stderr
    model = tmp_path / "g.safetensors"
    model.write_bytes(b"")
    result = runner.invoke(main, ["sample", str(model), "--out", str(tmp_path / "grid.png")])
    assert "No such option" not in result.stderr and "g.safetensors" in result.stderr


@main.command("_test_warn", hidden=True)
def _warn():
    import warnings

    from transfigure.images import AnimationWarning

    message = "a.gif: an animation; only its first frame is used"
    warnings.warn(AnimationWarning(message), stacklevel=1)


def test_own_warnings_are_warning_lines_on_stderr(runner):
    import warnings

    before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        result = runner.invoke(main, ["_test_warn"])
        quiet = runner.invoke(main, ["-q", "_test_warn"])
    assert result.exit_code == 0, result.output
    assert result.stderr == "warning: a.gif: an animation; only its first frame is used\n"
    assert quiet.stderr == ""
    assert warnings.showwarning is before  # put back when the command ends


def test_python_dash_m_entry_point():
    completed = subprocess.run(
        [sys.executable, "-m", "transfigure", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0
    assert __version__ in completed.stdout


def test_help_after_a_command_does_not_announce_its_precision():
    from click.testing import CliRunner

    for args in (["translate", "--help"], ["train", "cyclegan", "-h"], ["stylize", "--help"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0 and "Usage:" in result.output
        assert "precision:" not in result.output, args


def test_a_usage_error_comes_before_device_and_precision():
    from click.testing import CliRunner

    for args in (["demo", "--bogus"], ["translate", "--bogus"], ["train", "cyclegan", "--nope"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, args
        assert "No such option" in result.output, args
        assert "precision:" not in result.output, args
    if not torch.cuda.is_available():
        # the bad option is named, not the missing device
        result = CliRunner().invoke(main, ["--device", "cuda", "translate", "--bogus"])
        assert result.exit_code == 2
        assert "No such option" in result.output and "CUDA" not in result.output
