"""Tortoise models, one module per aggregate. Every model is re-exported here for Tortoise discovery.

Names: a model takes the plain noun of what it stores (Project, Sandbox, RunCommand), never a `Record` or `Row`
suffix. The Strawberry type that shows a model on the wire has the same name (schema/ reaches the model as
`models.X`). Any other class that would share the name is named for what it is instead: the live sandbox on this
host is `sandboxes.SandboxHandle`, a run event on the bus is `events.types.RunEventMessage`.
"""

from runplane.models.agent_run import AgentRun, RunCommand, RunEvent
from runplane.models.billing import BillingSubscription, CheckoutSession, ProcessedWebhook, UsageEntry, UserModelKey
from runplane.models.project import Project
from runplane.models.thread import Message, Thread
from runplane.models.user import AuthSession, User

__all__ = ["AgentRun", "AuthSession", "Message", "Project", "RunCommand", "RunEvent", "Thread", "User"]
__all__ += ["BillingSubscription", "CheckoutSession", "ProcessedWebhook", "UsageEntry", "UserModelKey"]
from runplane.models.sandbox import Sandbox  # noqa: E402

__all__ += ["Sandbox"]
from runplane.models.deployment import Deployment, DeploymentEvent  # noqa: E402
from runplane.models.integration import EmailDelivery, IntegrationProfile  # noqa: E402

__all__ += ["Deployment", "DeploymentEvent", "EmailDelivery", "IntegrationProfile"]
from runplane.models.outbox import ProcessLease, RunOutbox, WorkerBeat  # noqa: E402

__all__ += ["ProcessLease", "RunOutbox", "WorkerBeat"]
