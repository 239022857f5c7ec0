from unittest.mock import patch

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.schema_generator.state import State


class RenameModel(ops.RenameModel):
    """Tortoise 1.1's RenameModel re-renders only the renamed model, so the models it points at (User, Project)
    keep the old model's backward relations and refuse the new one's as duplicates. This one re-renders them too;
    the rest is Tortoise's."""

    def state_forward(self, app_label: str, state: State) -> None:
        related = state._find_related_models(app_label, self.old_name) - {(app_label, self.old_name)}

        def reload_with_related(label: str, name: str) -> None:
            state.reload_models({(label, name), *related})

        with patch.object(state, "reload_model", reload_with_related):
            super().state_forward(app_label, state)


class Migration(migrations.Migration):
    """Models take the plain noun (runplane/models/__init__.py says the rule). Only the migration state's names
    change: each model names its table, so no table or column is renamed."""

    dependencies = [("runplane", "0009_run_completed_at")]

    initial = False

    operations = [
        RenameModel(old_name="SandboxRecord", new_name="Sandbox"),
        RenameModel(old_name="CommandRecord", new_name="RunCommand"),
    ]
