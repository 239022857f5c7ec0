from tortoise import migrations

from runplane.models.migrations._operations import RenameModel


class Migration(migrations.Migration):
    """Models take the plain noun (runplane/models/__init__.py says the rule). Only the migration state's names
    change: each model names its table, so no table or column is renamed."""

    dependencies = [("runplane", "0009_run_completed_at")]

    initial = False

    operations = [
        RenameModel(old_name="SandboxRecord", new_name="Sandbox"),
        RenameModel(old_name="CommandRecord", new_name="RunCommand"),
    ]
