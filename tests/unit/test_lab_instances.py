"""Lab instances (``$VCOPS_LAB_INSTANCE``): two labs on one machine own disjoint names.

The layout is read once, at import, so each case runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vcops.lab.layout import parse_instance

NAMES = r"""
import json
from vcops.lab import layout
from vcops.lab.hosts import nspawn_argv
from vcops.lab.plan import plan_hosts, plan_switches
from vcops.lab.state import HostState

spec = plan_hosts(1)[0]
host = HostState.model_construct(name=spec.name, root=layout.HOSTS_DIR / spec.name / "root",
                                 netns=spec.netns)
argv = nspawn_argv(host)
print(json.dumps({
    "state": str(layout.STATE_DIR), "lock": str(layout.LOCK_FILE),
    "bridge": layout.BRIDGE, "subnet": str(layout.SUBNET), "gateway": str(layout.GATEWAY),
    "smtp": layout.SMTP_PORT, "netns": spec.netns, "cgroup": spec.cgroup, "veth": spec.veth,
    "switch_netns": plan_switches(1)[0].netns, "address": str(spec.address),
    "machine": [a for a in argv if a.startswith(("--machine=", "--hostname="))],
    "links": {n: layout.is_lab_link(n) for n in ("vcopsbr0", "vcopsbr1", "vcops-v11",
                                                 "vcops1-v11", "vcops2-v11", "eth0")},
}))
"""


def names(instance: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "VCOPS_LAB_INSTANCE"}
    if instance is not None:
        env["VCOPS_LAB_INSTANCE"] = instance
    done = subprocess.run(
        [sys.executable, "-c", NAMES], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_default_lab_keeps_its_names() -> None:
    for unset in (None, "", "0"):
        got = names(unset)
        assert got["state"] == "/var/lib/vcops-lab"
        assert got["lock"] == "/run/lock/vcops-lab.lock"
        assert (got["bridge"], got["subnet"], got["gateway"]) == (
            "vcopsbr0", "10.213.0.0/24", "10.213.0.1",
        )  # fmt: skip
        assert (got["netns"], got["cgroup"], got["veth"], got["switch_netns"]) == (
            "vcops-lab-kamailio-01", "vcops-lab-kamailio-01", "vcops-v11", "vcops-sw-01",
        )  # fmt: skip
        assert got["smtp"] == 2525 and got["address"] == "10.213.0.11"
        assert got["machine"] == ["--machine=lab-kamailio-01", "--hostname=lab-kamailio-01"]


def test_instance_1_has_its_own_names_and_neither_lab_claims_the_others_links() -> None:
    default, one = names(None), names("1")
    assert one["state"] == "/var/lib/vcops-lab-1"
    assert one["lock"] == "/run/lock/vcops-lab-1.lock"
    assert (one["bridge"], one["subnet"], one["gateway"]) == (
        "vcopsbr1", "10.213.1.0/24", "10.213.1.1",
    )  # fmt: skip
    assert (one["netns"], one["cgroup"], one["veth"], one["switch_netns"]) == (
        "vcops1-lab-kamailio-01", "vcops1-lab-kamailio-01", "vcops1-v11", "vcops1-sw-01",
    )  # fmt: skip
    assert one["smtp"] == 2526 and one["address"] == "10.213.1.11"
    # the container keeps its host name; nspawn's machine name (its /run keys) differs
    assert one["machine"] == ["--machine=lab-kamailio-01-1", "--hostname=lab-kamailio-01"]
    for key in ("state", "lock", "bridge", "subnet", "smtp", "netns", "cgroup", "veth"):
        assert default[key] != one[key], key
    # what each lab's `lab down` deletes: its own bridge and veths, never the other's
    assert default["links"] == {
        "vcopsbr0": True, "vcopsbr1": False, "vcops-v11": True,
        "vcops1-v11": False, "vcops2-v11": False, "eth0": False,
    }  # fmt: skip
    assert one["links"] == {
        "vcopsbr0": False, "vcopsbr1": True, "vcops-v11": False,
        "vcops1-v11": True, "vcops2-v11": False, "eth0": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    "raw", ["10", "x", "-1", " 1 2", "\u0661"]
)  # the last: an Arabic-Indic one
def test_a_value_that_is_not_an_instance_is_refused_with_a_clear_error(raw: str) -> None:
    instance, problem = parse_instance(raw)
    assert instance == 0 and problem is not None and "use 0 to 9" in problem
    env = {**os.environ, "VCOPS_LAB_INSTANCE": raw, "VCOPS_CONFIG": ""}
    for command in (["status"], ["down"]):
        done = subprocess.run(
            [sys.executable, "-m", "vcops.cli", "lab", *command],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode != 0
        assert "is not a lab instance: use 0 to 9" in done.stderr, done.stderr
        assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("raw", [None, "", " ", "0", "1", "9", " 3 "])
def test_values_that_name_an_instance(raw: str | None) -> None:
    instance, problem = parse_instance(raw)
    assert problem is None and instance == int((raw or "").strip() or "0")
