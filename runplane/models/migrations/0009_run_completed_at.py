from tortoise import migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    """A run's end is `completed_at`, the name every layer and both transports use (it was `finished_at`). A column
    rename (ALTER TABLE ... RENAME COLUMN on SQLite and PostgreSQL) keeps the values of existing runs."""

    dependencies = [("runplane", "0008_project_app_type")]

    initial = False

    operations = [
        ops.RenameField(model_name="AgentRun", old_name="finished_at", new_name="completed_at"),
    ]
