"""Config snapshots of servers and network gear: collected, masked, kept in git, restored.

Modules, pure core first::

    catalog        which values are secrets, per platform and file type (data)
    mask           masking with keyed hash markers; unmasking from live values
    noise          per-platform noise lines (timestamps, uptime, clock period)
    collect        what a server snapshot collects and the one script that does it
    build          collected output -> masked HostSnapshot (host folder layout)
    restore_plan   what a restore writes, validates and reloads; the device line plan
    restore_script the server restore script and its output
    models         pydantic models at the boundaries (CLI, JSON, audit)
    keys           the masking key, kept outside the repository        (I/O)
    gitstore       the git repository, through the git CLI               (I/O)
    devices        NAPALM/Netmiko reads and writes                       (I/O)
    take           snapshot runs                                         (I/O)
    restore, restore_device   restores                                   (I/O)

The package root imports nothing, so the pure core loads without the I/O stack.
Example::

    from vcops.snapshot.take import SnapshotContext, take_snapshots

    ctx = SnapshotContext.open(inventory, config, store)
    report = take_snapshots(ctx, targets, reason="before patching", window="W-42")
"""
