"""Mitogen's ``mitogen_linear`` strategy, found through this repository's plugin path.

The one place both Ansible runs of the roles load Mitogen from:
``vcops apply --engine ansible`` (:func:`vcops.enforce.ansible.strategy_env` names this
directory, shipped under ``vcops/share/plugins``) and Molecule's scenario
(``molecule/default/molecule.yml``, which runs ``ansible-playbook`` itself and names it
relative to the project). Ansible's ``linear`` strategy with Mitogen's mixin, as
``ansible_mitogen/plugins/strategy/mitogen_linear.py`` defines it.
"""

from __future__ import annotations

import ansible_mitogen.loaders
import ansible_mitogen.strategy

Base = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):
    pass
