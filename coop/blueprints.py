"""Blueprints of the domains added after the foundation."""


def extra_blueprints():
    return []


def extra_commands():
    return []


def extra_demo_steps():
    return []


def dev_setup_steps():
    return []
