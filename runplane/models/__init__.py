"""Tortoise models, one module per aggregate. Every model is re-exported here for Tortoise discovery."""

from runplane.models.agent_run import AgentRun, CommandRecord, RunEventRecord
from runplane.models.billing import CheckoutSession, ProcessedWebhook, Subscription, UsageEntry, UserModelKey
from runplane.models.project import Project
from runplane.models.thread import Message, Thread
from runplane.models.user import AuthSession, User

__all__ = ["AgentRun", "AuthSession", "CommandRecord", "Message", "Project", "RunEventRecord", "Thread", "User"]
__all__ += ["CheckoutSession", "ProcessedWebhook", "Subscription", "UsageEntry", "UserModelKey"]
from runplane.models.sandbox import SandboxRecord  # noqa: E402

__all__ += ["SandboxRecord"]
from runplane.models.deployment import Deployment, DeploymentEvent  # noqa: E402
from runplane.models.integration import EmailDelivery, IntegrationProfile  # noqa: E402

__all__ += ["Deployment", "DeploymentEvent", "EmailDelivery", "IntegrationProfile"]
from runplane.models.outbox import ProcessLease, RunOutbox, WorkerBeat  # noqa: E402

__all__ += ["ProcessLease", "RunOutbox", "WorkerBeat"]
