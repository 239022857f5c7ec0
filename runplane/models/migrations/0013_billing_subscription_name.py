from tortoise import migrations

from runplane.models.migrations._operations import RenameModel


class Migration(migrations.Migration):
    """A user's plan and billing period is the model BillingSubscription, as the GraphQL type that shows it (the
    name Subscription stays with GraphQL's root subscription type). Migration state only: the table is kept."""

    dependencies = [("runplane", "0012_run_event_sequence")]

    initial = False

    operations = [
        RenameModel(old_name="Subscription", new_name="BillingSubscription"),
    ]
