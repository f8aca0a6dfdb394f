"""Run one fake-switches simulator from a JSON config (started by :mod:`vcops.lab.switches`).

Run as a script with the venv's Python inside the switch's network namespace::

    ip netns exec vcops-sw-01 .venv/bin/python .../switch_server.py \\
        --config /var/lib/vcops-lab/switches/lab-sw-01/switch.json

It differs from the ``fake-switches`` command in three ways that make it behave more
like a real device:

- the password is read from a file, not the command line (``ps`` shows no secret);
- the enable secret is the login password (fake-switches compares the enable
  password as bytes against a str, so only an empty secret works otherwise);
- each switch has its own RSA host key instead of the key built into fake-switches.

- a global command typed in a sub-mode (``line vty``, an ACL) leaves it and is answered
  before the next prompt, as on IOS (fake-switches printed a prompt first, so a client
  waiting for the prompt missed a ``% Invalid input``);
- configuration mode accepts the hardening commands of
  :mod:`vcops.lab.ios_grammar` (loaded by path: the one list of what the lab's IOS
  takes) and their ``no`` forms, shows them in ``show running-config``, and answers
  anything else with ``% Invalid input detected``, as IOS does;
- a lab test can make the switch stop answering after its next configuration session:
  a file ``drop-after-push`` beside ``switch.json`` holding a number of seconds closes
  the SSH port for that long once the session leaves configuration mode.

Logging stays at INFO: at DEBUG fake-switches logs every line typed, secrets included.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any


def _load_sibling(name: str) -> ModuleType:
    """A module beside this script, by path (``-P`` keeps the directory off sys.path)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"vcops_lab_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


#: What fake-switches itself handles in configuration mode.
_NATIVE = re.compile(r"(no )?(vlan|interface|ip (vrf|route)|default interface)\b")


def _processors(grammar: ModuleType, store: Any, on_config_done: Any) -> Any:
    """fake-switches' Cisco processors, taught the hardening grammar."""
    from fake_switches.cisco.command_processor.config import (  # type: ignore[import-untyped]
        ConfigCommandProcessor,
    )
    from fake_switches.cisco.command_processor.config_interface import (  # type: ignore[import-untyped]
        ConfigInterfaceCommandProcessor,
    )
    from fake_switches.cisco.command_processor.config_vlan import (  # type: ignore[import-untyped]
        ConfigVlanCommandProcessor,
    )
    from fake_switches.cisco.command_processor.config_vrf import (  # type: ignore[import-untyped]
        ConfigVRFCommandProcessor,
    )
    from fake_switches.cisco.command_processor.enabled import (  # type: ignore[import-untyped]
        EnabledCommandProcessor,
    )
    from fake_switches.command_processing.base_command_processor import (  # type: ignore[import-untyped]
        BaseCommandProcessor,
    )

    def invalid(processor: Any) -> None:
        processor.write_line("      ^")
        processor.write_line(grammar.INVALID)
        processor.write_line("")

    class Section(BaseCommandProcessor):  # type: ignore[misc]
        def init(
            self, switch_configuration: Any, terminal: Any, logger: Any, piping: Any, *args: Any
        ) -> None:
            super().init(switch_configuration, terminal, logger, piping)
            self.section, self.mode = args

        def get_prompt(self) -> str:
            return f"{self.switch_configuration.name}(config-{self.mode})#"

        def parse_and_execute_command(self, line: str) -> bool:
            text = " ".join(line.split())
            if not text or text.startswith("!"):
                return True
            if text == "exit":
                self.is_done = True
                return True
            if text != "end" and store.apply_child(self.section, text).ok:
                return True
            self.is_done = True  # `end` or a global command leaves the sub-mode, as on IOS
            return False

    class Config(ConfigCommandProcessor):  # type: ignore[misc]
        sub_processor: Any

        def delegate_to_sub_processor(self, line: str) -> bool:
            # A line that leaves a sub-mode (a global command, `end`) runs here next; IOS
            # prints its answer, then one prompt. fake-switches would print the config
            # prompt first, so a client reading up to the prompt missed the answer.
            processed = bool(self.sub_processor.process_command(line))
            if self.sub_processor.is_done:
                self.sub_processor = None
                if processed:  # `exit`: the sub-mode ended on its own line
                    self.show_prompt()
            return processed

        def parse_and_execute_command(self, line: str) -> bool:
            if store.in_banner:
                store.feed_banner(line)
                return True
            text = " ".join(line.split())
            if not text or text.startswith("!"):
                return True
            if text in ("end", "exit"):
                self.is_done = True
                on_config_done()
                return True
            result = store.apply(text)
            if result.ok:
                if result.section:
                    mode = "line" if result.section.startswith("line") else "std-nacl"
                    self.move_to(Section(), result.section, mode)
                return True
            if _NATIVE.match(text):
                return bool(super().parse_and_execute_command(line))
            invalid(self)
            return True

    class Enabled(EnabledCommandProcessor):  # type: ignore[misc]
        def show_run(self) -> None:
            captured: list[str] = []
            self.write_line = captured.append
            try:
                super().show_run()
            finally:
                del self.write_line
            body = captured[3:]  # after the "Building configuration..." header
            end = len(body) - 1 - body[::-1].index("end")
            extra = store.running_lines()
            body = [*body[:end], *extra, *(["!"] if extra else []), *body[end:]]
            logging.info("running config served")  # tests count fetches with this line
            self.write_line("Building configuration...")
            self.write_line("")
            self.write_line(f"Current configuration : {len(chr(10).join(body)) + 1} bytes")
            for text in body:
                self.write_line(text)

    def build() -> Any:
        return Enabled(
            config=Config(
                config_vlan=ConfigVlanCommandProcessor(),
                config_vrf=ConfigVRFCommandProcessor(),
                config_interface=ConfigInterfaceCommandProcessor(),
            )
        )

    return build


def main() -> None:
    """Parse ``--config``, build the switch and serve SSH until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args()
    config = json.loads(args.config.read_text())
    password = Path(config["password_file"]).read_text().strip()
    host_key = Path(config["host_key"])
    private_key = host_key.read_text()
    public_key = host_key.with_name(host_key.name + ".pub").read_text().strip()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from fake_switches import switch_factory  # type: ignore[import-untyped]
    from fake_switches.transports import ssh_service  # type: ignore[import-untyped]
    from twisted.internet import reactor

    logging.getLogger().setLevel(logging.INFO)
    ssh_service.getRSAKeys = lambda: (public_key, private_key)
    core = switch_factory.SwitchFactory().get(config["model"], config["hostname"], password)
    grammar = _load_sibling("ios_grammar")
    store = grammar.HardeningStore()
    listening: list[Any] = []
    listen = reactor.listenTCP

    def listen_tcp(*args: Any, **kwargs: Any) -> Any:
        port = listen(*args, **kwargs)
        listening[:] = [port, args, kwargs]
        return port

    drop_file = args.config.with_name("drop-after-push")

    def on_config_done() -> None:
        if not drop_file.exists() or not listening:
            return
        seconds = float(drop_file.read_text().strip() or "10")
        drop_file.unlink()
        logging.info("dropping SSH for %ss (lab drop-after-push)", seconds)
        listening[0].stopListening()
        reactor.callLater(seconds, lambda: listen_tcp(*listening[1], **listening[2]))  # type: ignore[arg-type]

    if hasattr(core, "new_command_processor"):
        core.new_command_processor = _processors(grammar, store, on_config_done)
    reactor.listenTCP = listen_tcp  # type: ignore[method-assign]
    service = ssh_service.SwitchSshService(
        ip=config["listen_host"],
        port=int(config["port"]),
        switch_core=core,
        users={config["username"]: password.encode()},
    )
    service.hook_to_reactor(reactor)
    logging.info(
        "switch %s serving SSH on %s:%s", config["hostname"], config["listen_host"], config["port"]
    )
    reactor.run()  # type: ignore[misc]


if __name__ == "__main__":
    main()
