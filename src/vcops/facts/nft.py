"""Which sources an nftables ruleset lets reach a port: a pure evaluator over ``nft -j``.

Only base chains hooked on ``input`` matter for traffic to the host. A packet must
survive every such chain (one per table), so a port is exposed to a source only when
all of them let it through. Within a chain, rules are read in order; ``jump`` and
``goto`` are followed; matches this evaluator does not understand make the rule count
as matching *more* traffic, never less, so an exposure is never hidden.

Example input (abridged ``nft -j list ruleset``)::

    {"nftables": [
      {"chain": {"family": "inet", "table": "filter", "name": "input",
                 "hook": "input", "policy": "drop"}},
      {"rule": {"family": "inet", "table": "filter", "chain": "input",
                "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp",
                          "field": "dport"}}, "right": 22}},
                         {"match": {"op": "==", "left": {"payload": {"protocol": "ip",
                          "field": "saddr"}}, "right": {"prefix": {"addr": "10.0.0.0",
                          "len": 8}}}},
                         {"accept": null}]}}]}

``exposure(ruleset, "tcp", 22)`` is then ``[IPv4Network("10.0.0.0/8")]``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

Network = IPv4Network | IPv6Network
ANY: tuple[Network, ...] = (IPv4Network("0.0.0.0/0"), IPv6Network("::/0"))
JsonObj = dict[str, object]


@dataclass(frozen=True)
class Chain:
    family: str
    table: str
    name: str
    hook: str | None
    policy: str | None
    rules: tuple[tuple[JsonObj, ...], ...] = ()


@dataclass
class Ruleset:
    """Chains by (family, table, name), with their rules' expressions in order."""

    chains: dict[tuple[str, str, str], Chain] = field(default_factory=dict)
    sets: dict[tuple[str, str, str], list[object]] = field(default_factory=dict)

    def input_chains(self) -> list[Chain]:
        return [c for c in self.chains.values() if c.hook == "input"]


def parse_ruleset(data: object) -> Ruleset:
    """Build a :class:`Ruleset` from the parsed JSON of ``nft -j list ruleset``."""
    items = data.get("nftables", []) if isinstance(data, dict) else []
    chains: dict[tuple[str, str, str], dict[str, object]] = {}
    rules: dict[tuple[str, str, str], list[tuple[JsonObj, ...]]] = {}
    sets: dict[tuple[str, str, str], list[object]] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("chain"), dict):
            c = item["chain"]
            key = (str(c.get("family")), str(c.get("table")), str(c.get("name")))
            chains[key] = c
        elif isinstance(item.get("set"), dict):
            st = item["set"]
            key = (str(st.get("family")), str(st.get("table")), str(st.get("name")))
            elems = st.get("elem", [])
            sets[key] = list(elems) if isinstance(elems, list) else []
        elif isinstance(item.get("rule"), dict):
            r = item["rule"]
            key = (str(r.get("family")), str(r.get("table")), str(r.get("chain")))
            expr = r.get("expr", [])
            rules.setdefault(key, []).append(
                tuple(e for e in expr if isinstance(e, dict)) if isinstance(expr, list) else ()
            )
    out = Ruleset(sets=sets)
    for key, c in chains.items():
        hook = c.get("hook")
        policy = c.get("policy")
        out.chains[key] = Chain(
            family=key[0],
            table=key[1],
            name=key[2],
            hook=str(hook) if hook is not None else None,
            policy=str(policy) if policy is not None else None,
            rules=tuple(rules.get(key, [])),
        )
    return out


# --- matching -------------------------------------------------------------------


def within(inner: Network, outer: Network) -> bool:
    """Whether ``inner`` lies inside ``outer`` (never across IP versions)."""
    if isinstance(inner, IPv4Network) and isinstance(outer, IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(inner, IPv6Network) and isinstance(outer, IPv6Network):
        return inner.subnet_of(outer)
    return False


@dataclass(frozen=True)
class _Match:
    """What a rule's matches say about one (proto, port) flow: does it apply, from where."""

    applies: bool
    sources: tuple[Network, ...] | None  # None: any source


def _ports(right: object) -> list[tuple[int, int]] | None:
    """Port values on the right of a dport match, as ranges; None if not understood."""
    if isinstance(right, int):
        return [(right, right)]
    if isinstance(right, str) and right.isascii() and right.isdigit() and len(right) <= 5:
        return [(int(right), int(right))]
    if isinstance(right, dict):
        if "range" in right and isinstance(right["range"], list) and len(right["range"]) == 2:
            lo, hi = right["range"]
            if isinstance(lo, int) and isinstance(hi, int):
                return [(lo, hi)]
        if "set" in right and isinstance(right["set"], list):
            out: list[tuple[int, int]] = []
            for element in right["set"]:
                sub = _ports(element)
                if sub is None:
                    return None
                out.extend(sub)
            return out
    return None


def _networks(right: object) -> list[Network] | None:
    if isinstance(right, str):
        try:
            return [ipaddress.ip_network(right, strict=False)]
        except ValueError:
            return None
    if isinstance(right, dict):
        if "prefix" in right and isinstance(right["prefix"], dict):
            p = right["prefix"]
            try:
                return [ipaddress.ip_network(f"{p.get('addr')}/{p.get('len')}", strict=False)]
            except ValueError:
                return None
        if "set" in right and isinstance(right["set"], list):
            out: list[Network] = []
            for element in right["set"]:
                sub = _networks(element)
                if sub is None:
                    return None
                out.extend(sub)
            return out
        if "range" in right:
            return None
    return None


def _evaluate(
    expressions: tuple[JsonObj, ...],
    proto: str,
    port: int,
    named: dict[str, list[object]] | None = None,
) -> tuple[_Match, str | None, str | None]:
    """Match a rule against new traffic to (proto, port); return (match, verdict, jump target)."""
    applies = True
    sources: tuple[Network, ...] | None = None
    verdict: str | None = None
    target: str | None = None
    for expr in expressions:
        if "accept" in expr:
            verdict = "accept"
        elif "drop" in expr or "reject" in expr:
            verdict = "drop"
        elif "jump" in expr or "goto" in expr:
            kind = "jump" if "jump" in expr else "goto"
            body = expr[kind]
            verdict = kind
            target = str(body.get("target")) if isinstance(body, dict) else None
        elif "return" in expr:
            verdict = "return"
        elif "match" in expr and isinstance(expr["match"], dict):
            m = expr["match"]
            op = m.get("op", "==")
            left = m.get("left")
            right = m.get("right")
            negate = op == "!="
            if isinstance(right, str) and right.startswith("@") and named is not None:
                right = {"set": named.get(right[1:], [])}
            if isinstance(left, dict) and "payload" in left and isinstance(left["payload"], dict):
                pl = left["payload"]
                fieldname, protocol = pl.get("field"), pl.get("protocol")
                if protocol in {"tcp", "udp"} and protocol != proto:
                    applies = False  # a match on another transport: not this flow
                elif protocol in {"icmp", "icmpv6", "sctp", "esp", "ah", "udplite", "dccp"}:
                    applies = False
                elif fieldname == "dport" and protocol in {"tcp", "udp", "th"}:
                    ranges = _ports(right)
                    if ranges is None:
                        continue  # not understood: assume it matches
                    hit = any(lo <= port <= hi for lo, hi in ranges)
                    if hit == negate:
                        applies = False
                elif fieldname == "saddr" and protocol in {"ip", "ip6"}:
                    nets = _networks(right)
                    if nets is None or negate:
                        continue  # widen rather than hide
                    sources = (
                        tuple(nets)
                        if sources is None
                        else tuple(n for n in nets if any(within(n, s) for s in sources))
                    )
            elif isinstance(left, dict) and "meta" in left and isinstance(left["meta"], dict):
                key = left["meta"].get("key")
                if key == "l4proto":
                    protos = right.get("set") if isinstance(right, dict) else [right]
                    if isinstance(protos, list) and all(isinstance(p, str) for p in protos):
                        if (proto in protos) == negate:
                            applies = False
                elif key in {"iifname", "iif"} and not negate and right in {"lo", "1"}:
                    applies = False  # loopback only: not reachable from the network
            elif isinstance(left, dict) and "ct" in left and isinstance(left["ct"], dict):
                if left["ct"].get("key") == "state" and not negate:
                    states = right if isinstance(right, list) else [right]
                    if "new" not in states:
                        applies = False  # established/related only: no new connections
    return _Match(applies, sources), verdict, target


def _walk(
    rs: Ruleset, chain: Chain, proto: str, port: int, depth: int = 0
) -> tuple[list[tuple[Network, ...] | None], bool]:
    """Sources accepted in a chain, and whether evaluation fell through its end."""
    accepted: list[tuple[Network, ...] | None] = []
    if depth > 16:
        return [None], False
    for expressions in chain.rules:
        named = {k[2]: v for k, v in rs.sets.items() if k[:2] == (chain.family, chain.table)}
        match, verdict, target = _evaluate(expressions, proto, port, named)
        if not match.applies or verdict is None:
            continue
        if verdict == "accept":
            accepted.append(match.sources)
            if match.sources is None:
                return accepted, False
        elif verdict == "drop":
            if match.sources is None:
                return accepted, False
        elif verdict in {"jump", "goto"} and target is not None:
            sub = rs.chains.get((chain.family, chain.table, target))
            if sub is None:
                continue
            sub_accepted, fell_through = _walk(rs, sub, proto, port, depth + 1)
            accepted.extend(_narrow(s, match.sources) for s in sub_accepted)
            if (verdict == "goto" or not fell_through) and match.sources is None:
                return accepted, False
        elif verdict == "return" and match.sources is None:
            return accepted, True
    return accepted, True


def _narrow(
    inner: tuple[Network, ...] | None, outer: tuple[Network, ...] | None
) -> tuple[Network, ...] | None:
    if outer is None:
        return inner
    if inner is None:
        return outer
    return tuple(n for n in inner if any(within(n, o) for o in outer))


def exposure(rs: Ruleset, proto: str, port: int) -> list[Network]:
    """Source networks from which new ``proto``/``port`` traffic reaches the host.

    ``[]`` means nowhere; ``ANY`` means from anywhere.
    """
    chains = rs.input_chains()
    if not chains:
        return list(ANY)
    result: list[Network] | None = None
    for chain in chains:
        accepted, fell_through = _walk(rs, chain, proto, port)
        if fell_through and chain.policy != "drop":
            accepted.append(None)
        nets: list[Network] = []
        for sources in accepted:
            if sources is None:
                nets = list(ANY)
                break
            nets.extend(sources)
        result = nets if result is None else [n for n in nets if any(within(n, r) for r in result)]
    return result or []


def default_drop(rs: Ruleset) -> bool:
    """Whether some input base chain drops what no rule accepted."""
    for chain in rs.input_chains():
        if chain.policy == "drop":
            return True
        if chain.rules:
            last = chain.rules[-1]
            match, verdict, _ = _evaluate(last, "tcp", 0)
            only_verdict = all(("drop" in e or "reject" in e or "counter" in e) for e in last)
            if verdict == "drop" and match.sources is None and only_verdict:
                return True
    return False


def outside(networks: list[Network], allowed: list[Network]) -> list[Network]:
    """The networks not contained in any of ``allowed``."""
    return [n for n in networks if not any(within(n, a) for a in allowed)]
