"""`genconf agent --template TPL`: the config rendered through a Jinja2 template with
the same atomic write, exec and report rules as the other formats; a template that
fails is a failed apply that leaves PATH untouched; SIGHUP renders again."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from agent_harness import agent_process, report_where
from support.cli_runner import Genconf, clean_env

from genconf.agent.files import RenderError
from genconf.agent.template import render_template
from genconf.api.server import RunningServer
from genconf.client import Client

SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 8080},
    "log-level": {"type": "string", "default": "info"},
}
TEMPLATE = """\
server {{ unit }} {
  listen {{ port }};  # {{ config["log-level"] }} on {{ branch or "master" }}
}
# {{ hash }}
"""


def rendered(unit: str, port: int, level: str, hash_: str, branch: str = "master") -> bytes:
    return (f"server {unit} {{\n  listen {port};  # {level} on {branch}\n}}\n# {hash_}\n").encode()


async def test_agent_renders_a_template_and_a_failing_one_leaves_path_untouched(
    srv: RunningServer, tmp_path: Path
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    target = conf / "web.conf"  # a suffix no --format has: fine with a template
    tpl = tmp_path / "web.conf.j2"
    tpl.write_text(TEMPLATE)
    runs = tmp_path / "runs"
    command = f'echo "$GENCONF_HASH" >> {runs}'
    log = tmp_path / "agent.log"

    def ran() -> list[str]:
        return runs.read_text().splitlines() if runs.exists() else []

    async with Client(srv.address, timeout=10) as c:
        created = await c.create_application("web", schema=SCHEMA, units=1)
        first = await c.get_config("web/0", min_revision=created.revision)
        args = ("--template", str(tpl), "--exec", command)
        async with agent_process(srv.address, "web/0", target, *args, log=log) as agent:
            ok = await report_where(c, "web/0", created.revision, lambda r: r.hash == first.hash)
            assert ok.ok and ok.message == f"wrote {target}; exec ok"
            assert target.read_bytes() == rendered("web/0", 8080, "info", first.hash)
            assert target.stat().st_mode & 0o777 == 0o600
            assert ran() == [first.hash]

            # An undefined name: a failed apply naming the line and the key; PATH as it was.
            tpl.write_text(TEMPLATE.replace("# {{ hash }}", "{{ db_host }}"))
            before = target.stat()
            w = await c.set_config("web", {"port": 9090})
            second = await c.get_config("web/0", min_revision=w.revision)
            failed = await report_where(c, "web/0", w.revision, lambda r: r.hash == second.hash)
            assert not failed.ok
            assert failed.message == (
                f"template web.conf.j2, line 4: 'db_host' is undefined; {target} left as it was"
            )
            assert target.read_bytes() == rendered("web/0", 8080, "info", first.hash)
            assert target.stat().st_mtime_ns == before.st_mtime_ns
            assert target.stat().st_ino == before.st_ino, "not even rewritten in place"
            assert ran() == [first.hash], "no exec for a config that was not written"

            # Fixed, then SIGHUP: rendered again now, without waiting for a change.
            checkpoint = (await c.snapshot()).revision
            tpl.write_text(TEMPLATE.replace("listen", "listen 0.0.0.0:"))
            agent.send_signal(signal.SIGHUP)
            fixed = await report_where(c, "web/0", checkpoint, lambda r: r.ok)
            assert fixed.hash == second.hash and fixed.message == f"wrote {target}; exec ok"
            expected = rendered("web/0", 9090, "info", second.hash).replace(
                b"listen", b"listen 0.0.0.0:"
            )
            assert target.read_bytes() == expected
            assert ran() == [first.hash, second.hash]
            # Nothing to change: a second SIGHUP writes nothing and runs nothing.
            agent.send_signal(signal.SIGHUP)
            await agent.logged(f"already holds config {second.hash[:12]}; nothing to do")
            assert ran() == [first.hash, second.hash]

        # A restarted agent renders what PATH holds: it neither writes nor runs CMD.
        checkpoint = (await c.snapshot()).revision
        written = target.stat()
        async with agent_process(srv.address, "web/0", target, *args, log=log):
            resumed = await report_where(c, "web/0", checkpoint, lambda r: True)
            assert resumed.hash == second.hash and resumed.ok
            assert resumed.message == f"{target} holds config {second.hash[:12]} (agent restarted)"
            assert target.stat().st_mtime_ns == written.st_mtime_ns
            assert ran() == [first.hash, second.hash]

            # A syntax error at the next change: failed, naming the line; PATH untouched.
            tpl.write_text("ok {{ port }}\n{% if port %}\nopen\n")
            w = await c.set_config("web", {"log-level": "debug"})
            third = await c.get_config("web/0", min_revision=w.revision)
            broken = await report_where(c, "web/0", w.revision, lambda r: r.hash == third.hash)
    assert not broken.ok
    assert broken.message.startswith("template web.conf.j2, line 2: Unexpected end of template")
    assert broken.message.endswith(f" is 'if'; {target} left as it was")
    assert target.read_bytes() == expected and target.stat().st_mtime_ns == written.st_mtime_ns
    assert ran() == [first.hash, second.hash]
    assert sorted(p.name for p in conf.iterdir()) == ["web.conf"], "no temp file left"
    text = log.read_text()
    assert "received SIGHUP; rendering config" in text
    assert "'db_host' is undefined" in text


async def test_template_and_format_are_exclusive_and_a_missing_template_stops_the_start(
    tmp_path: Path,
) -> None:
    genconf = Genconf("127.0.0.1:1", clean_env(tmp_path))
    both = await genconf(
        "agent", "--unit", "web/0", "--write", str(tmp_path / "x"), "--format", "env",
        "--template", str(tmp_path / "x.j2"),
    )  # fmt: skip
    assert both.rc == 2
    assert "argument --template: not allowed with argument --format" in both.err
    missing = await genconf(
        "agent", "--unit", "web/0", "--write", str(tmp_path / "x"),
        "--template", str(tmp_path / "nope.j2"),
    )  # fmt: skip
    assert missing.rc == 1
    assert f"cannot read template {tmp_path / 'nope.j2'}: No such file or directory" in missing.err


# -- in-process: what a template sees and how it fails -------------------------------------


def render(tmp_path: Path, text: str, config: dict[str, Any], **extra: str) -> str:
    tpl = tmp_path / "t.j2"
    tpl.write_text(text)
    args = {"unit": "web/0", "hash_": "h" * 64, "branch": "", **extra}
    return render_template(tpl, config, **args).decode()


def test_values_are_top_level_names_and_config_with_unit_hash_branch(tmp_path: Path) -> None:
    config = {"port": 80, "log-level": "debug", "unit": "a key named unit", "opts": {"x": [1]}}
    text = render(
        tmp_path,
        "{{ port }} {{ config['log-level'] }} {{ config.opts.x[0] }} {{ unit }} "
        "{{ config.unit }} {{ hash[:4] }} [{{ branch }}]",
        config,
    )
    assert text == "80 debug 1 web/0 a key named unit hhhh []"
    assert render(tmp_path, "{{ branch }}", {}, branch="canary") == "canary"


def test_output_is_not_escaped_and_keeps_its_trailing_newline(tmp_path: Path) -> None:
    text = render(tmp_path, "v={{ v }}\n\n", {"v": "<a href='x'>&amp;\"</a>"})
    assert text == "v=<a href='x'>&amp;\"</a>\n\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a\nb {{ nope }}\n", "template t.j2, line 2: 'nope' is undefined"),
        ("{{ config.nope }}", "template t.j2, line 1: 'dict object' has no attribute 'nope'"),
        ("x\n\n{{ port.deep }}", "template t.j2, line 3: 'int object' has no attribute 'deep'"),
        ("{% for x in %}", "template t.j2, line 1: Expected an expression, got 'end of statement"),
        ("a\n{{ port / 0 }}", "template t.j2, line 2: ZeroDivisionError: division by zero"),
        ("{% include 'gone.j2' %}", "template t.j2, line 1: cannot find 'gone.j2'"),
    ],
)
def test_errors_name_the_file_the_line_and_what(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(RenderError) as caught:
        render(tmp_path, text, {"port": 1})
    assert str(caught.value).startswith(message)


def test_includes_are_found_next_to_the_template_and_errors_name_them(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "listen.j2").write_text("listen {{ port }};\n# {{ missing }}\n")
    with pytest.raises(RenderError, match=r"^template parts/listen.j2, line 2: 'missing' is"):
        render(tmp_path, "{% include 'parts/listen.j2' %}", {"port": 80})
    (tmp_path / "parts" / "listen.j2").write_text("listen {{ port }};\n")
    assert render(tmp_path, "{% include 'parts/listen.j2' %}", {"port": 80}) == "listen 80;\n"


def test_the_template_is_read_at_every_render(tmp_path: Path) -> None:
    assert render(tmp_path, "one {{ port }}", {"port": 1}) == "one 1"
    assert render(tmp_path, "two {{ port }}", {"port": 1}) == "two 1"
    with pytest.raises(RenderError, match=r"^cannot read template .*gone.j2: no such file"):
        render_template(tmp_path / "gone.j2", {}, unit="web/0", hash_="h", branch="")
