from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    """A project's app type (web or mobile), chosen at initiate: Cheatcode's web app reads it to preview Expo apps."""

    dependencies = [("runplane", "0007_run_abilities")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Project",
            name="app_type",
            field=fields.CharField(default="web", max_length=16),
        ),
    ]
