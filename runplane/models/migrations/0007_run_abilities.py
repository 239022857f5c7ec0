from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("runplane", "0006_run_outbox")]

    initial = False

    operations = [
        ops.AddField(model_name="AgentRun", name="abilities", field=fields.JSONField(null=True)),
    ]
