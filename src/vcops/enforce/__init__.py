"""vcops enforcement: role variables, templates, host-side helper, pyinfra deploys, apply."""
