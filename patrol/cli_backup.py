"""`patrol backup` and `patrol restore` (services/backup.py): the database and its photos,
taken while the app runs, restored into an empty installation."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from .services import backup as service


@click.command("backup")
@click.argument("target", type=click.Path(dir_okay=True, file_okay=True))
@with_appcontext
def backup_cmd(target):
    """Back up the database and the photo files it refers to into TARGET: a new (or
    empty) folder, or a file ending in .tar. Safe while the app runs."""
    try:
        manifest = service.backup(target, say=click.echo)
    except service.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(service.describe(manifest))


@click.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=True, file_okay=True))
@with_appcontext
def restore_cmd(source):
    """Restore a backup (folder or .tar) into this installation, whose database and photo
    store must be empty (PATROL_DATABASE_URL, PATROL_PHOTO_DIR or PATROL_S3_*)."""
    try:
        manifest = service.restore(source, say=click.echo)
    except service.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("restored: " + service.describe(manifest))


def install(app):
    app.cli.add_command(backup_cmd)
    app.cli.add_command(restore_cmd)
