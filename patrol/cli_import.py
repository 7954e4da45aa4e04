"""`patrol import-template` and `patrol import`: a district from its Excel sheets."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from .extensions import db


@click.command("import-template")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
def import_template_cmd(output):
    """Write the import template workbook (one sheet per kind, with notes)."""
    from .importer.template import template_bytes
    Path(output).write_bytes(template_bytes())
    click.echo(f"Template written to {output}")


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check and report; write nothing.")
@with_appcontext
def import_cmd(file, dry_run):
    """Import streets, communities, companies, compounds, buildings, volunteers and
    accounts from FILE (.xlsx, or .csv in UTF-8 or GBK). Every error is listed at once;
    a file with errors writes nothing."""
    from .importer.read import Refused, read
    from .services import district_import
    path = Path(file)
    try:
        tables = read(path.read_bytes(), path.name)
    except Refused as exc:
        click.echo(f"无法导入：{exc}", err=True)
        sys.exit(2)
    plan = district_import.plan(tables)
    for problem in plan.problems:
        click.echo(str(problem), err=True)
    if not plan.ok:
        db.session.rollback()
        click.echo(f"发现 {len(plan.problems)} 处错误，未写入任何数据。", err=True)
        sys.exit(1)
    for line in plan.changes:
        click.echo(line)
    if dry_run:
        db.session.rollback()
        click.echo(f"试导入：{plan.summary()}（未写入）")
        return
    from .cli import progress_bar
    total = len(plan.ops) + len(plan.buildings)
    with progress_bar("import", total) as advance:
        district_import.apply(plan, progress=lambda done, _total: advance(done))
    db.session.commit()
    click.echo(f"已导入：{plan.summary()}")
