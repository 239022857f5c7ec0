"""Migration operations Tortoise lacks or gets wrong. The loader skips modules named with a leading underscore."""

from unittest.mock import patch

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


class InStateOnly(ops.TortoiseOperation):
    """`operation` applied to the migration state alone, where the database already has what it describes (a
    column rename carries its constraints with it on SQLite and PostgreSQL; SQLite cannot drop a table's inline
    UNIQUE, which Tortoise's RemoveConstraint would try)."""

    def __init__(self, operation: ops.TortoiseOperation) -> None:
        self.operation = operation

    def describe(self) -> str:
        return f"{self.operation.describe()} (migration state only)"

    def state_forward(self, app_label: str, state: State) -> None:
        self.operation.state_forward(app_label, state)
