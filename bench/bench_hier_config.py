"""hier-config 2.3.1 (pinned by ciscoconfparse2 0.9.18) against 3.x on the VC-NET fixtures.

Run: python bench/bench_hier_config.py [HC3_DIR]  (HC3_DIR: a `pip install --target`
directory holding hier-config 3.x, kept out of the venv because of the pin). For each
fixture it renders the intended hardening config, cuts both configs to the enforceable
scopes and times remediation + rollback with each version, then prints the ratio and
whether the two versions' remediation lines agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from ipaddress import ip_network
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "configs"
CASES = [
    "ios/stock.cfg",
    "ios/fake_switches.cfg",
    "eos/stock.cfg",
    "nxos_ssh/stock.cfg",
    "junos/stock.conf",
    "ios/hardened.cfg",
    "eos/hardened.cfg",
    "nxos_ssh/hardened.cfg",
]
OS3 = {"ios": "CISCO_IOS", "eos": "ARISTA_EOS", "nxos_ssh": "CISCO_NXOS", "junos": "JUNIPER_JUNOS"}
ROUNDS = 20

HC3 = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from hier_config import WorkflowRemediation, get_hconfig, Platform
cases = json.loads(sys.stdin.read())
out = {}
for name, (os3, running, intended) in cases.items():
    start = time.perf_counter()
    for _ in range(ROUNDS):
        wf = WorkflowRemediation(get_hconfig(Platform[os3], running), get_hconfig(Platform[os3], intended))
        rem = [str(l) for l in wf.remediation_config.all_children_sorted()]
        rb = [str(l) for l in wf.rollback_config.all_children_sorted()]
    out[name] = {"seconds": (time.perf_counter() - start) / ROUNDS, "lines": len(rem), "rollback": len(rb),
                 "remediation": [x for c in wf.remediation_config.all_children_sorted()
                                 for x in c.cisco_style_text().splitlines()]}
print(json.dumps(out))
""".replace("ROUNDS", str(ROUNDS))


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from vcops.baseline.context import DeviceContext
    from vcops.baseline.network import parse_device_config
    from vcops.baseline.settings import BaselineSettings
    from vcops.enforce.netdev_intent import intent_vars, render_intended
    from vcops.enforce.netdev_plan import _host, _text, _with_parents, config_lines
    from vcops.enforce.netdev_scope import enforceable, scoped_lines

    settings = BaselineSettings.model_validate(
        {"device_ntp_servers": ["192.0.2.123"], "device_syslog_servers": ["192.0.2.50"]}
    )
    ctx = DeviceContext(settings, (ip_network("198.51.100.0/24"),))
    cases: dict[str, tuple[str, str, str]] = {}
    mine: dict[str, dict[str, object]] = {}
    for case in CASES:
        platform = case.split("/")[0]
        text = (FIXTURES / case).read_text()
        facts = parse_device_config(platform, text)
        todo = sorted(enforceable(platform))
        intended = render_intended(
            platform, intent_vars(ctx, platform, facts.vty_lines, secrets={})
        )
        run = scoped_lines(platform, config_lines(platform, text), todo)
        want = scoped_lines(platform, config_lines(platform, intended), todo)
        run = _with_parents(platform, run, want)
        start = time.perf_counter()
        for _ in range(ROUNDS):
            host = _host(platform)
            host.load_running_config("\n".join(run) + "\n")
            host.load_generated_config("\n".join(want) + "\n")
            rem = _text(host.remediation_config().all_children_sorted(), platform)
            rb = _text(host.rollback_config().all_children_sorted(), platform)
        mine[case] = {
            "seconds": (time.perf_counter() - start) / ROUNDS,
            "lines": len(rem),
            "rollback": len(rb),
            "remediation": rem,
        }
        cases[case] = (OS3[platform], "\n".join(run) + "\n", "\n".join(want) + "\n")
    hc3_dir = sys.argv[1] if len(sys.argv) > 1 else str(Path(tempfile.gettempdir()) / "hc3")
    done = subprocess.run(
        [sys.executable, "-c", HC3, hc3_dir],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = json.loads(done.stdout)
    print(f"{'case':24} {'2.3.1 ms':>9} {'3.x ms':>8} {'ratio':>6} {'lines 2/3':>10}  same")
    for case in CASES:
        a, b = mine[case], theirs[case]
        same = sorted(x.strip() for x in a["remediation"]) == sorted(
            x.strip() for x in b["remediation"]
        )
        print(
            f"{case:24} {a['seconds'] * 1e3:9.2f} {b['seconds'] * 1e3:8.2f} "
            f"{b['seconds'] / a['seconds']:6.2f} {a['lines']:>4}/{b['lines']:<4}  {same}"
        )


if __name__ == "__main__":
    main()
