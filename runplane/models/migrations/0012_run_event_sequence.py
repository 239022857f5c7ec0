from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.constraints import UniqueConstraint

from runplane.models.migrations._operations import InStateOnly


class Migration(migrations.Migration):
    """A run event's number is `sequence` in the model as in every layer above it (the column was `seq`). The rename
    keeps the values, and the (run, number) UNIQUE moves with the column on SQLite and PostgreSQL, so the constraint
    changes in the migration state only (on PostgreSQL it keeps the name Tortoise gave it for (run_id, seq))."""

    dependencies = [("runplane", "0011_run_event_name")]

    initial = False

    operations = [
        InStateOnly(ops.RemoveConstraint(model_name="RunEvent", name=None, fields=["run_id", "seq"])),
        ops.RenameField(model_name="RunEvent", old_name="seq", new_name="sequence"),
        InStateOnly(
            ops.AddConstraint(
                model_name="RunEvent", constraint=UniqueConstraint(fields=("run_id", "sequence"), name=None)
            )
        ),
        ops.AlterModelOptions(
            name="RunEvent",
            options={
                "table": "agent_run_events",
                "app": "runplane",
                "unique_together": (("run_id", "sequence"),),
                "pk_attr": "id",
                "table_description": "One event of a run's log, written once. (run, sequence) is unique and sequence "
                "has no gaps.",
            },
        ),
    ]
