from tortoise import migrations

from runplane.models.migrations._operations import RenameModel


class Migration(migrations.Migration):
    """A run's logged event is the model RunEvent (the bus carries it as events.types.RunEventMessage). Only the
    migration state's name changes: the model names its table (agent_run_events)."""

    dependencies = [("runplane", "0010_model_names")]

    initial = False

    operations = [
        RenameModel(old_name="RunEventRecord", new_name="RunEvent"),
    ]
