"""Mitogen's ``mitogen_linear`` strategy, found through this repository's plugin path.

Molecule's scenario (``molecule/default/molecule.yml``) runs ``ansible-playbook``
itself, so it cannot take the strategy environment ``vcops apply --engine ansible``
computes (:func:`vcops.enforce.ansible.strategy_env`, which points Ansible at the
plugins directory inside the installed ``mitogen`` package). This module is that
plugin, loaded from a fixed path: Ansible's ``linear`` strategy with Mitogen's mixin,
as ``ansible_mitogen/plugins/strategy/mitogen_linear.py`` defines it.
"""

from __future__ import annotations

import ansible_mitogen.loaders
import ansible_mitogen.strategy

Base = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):
    pass
