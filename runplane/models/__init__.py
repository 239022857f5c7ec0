"""Tortoise models, one module per aggregate. Every model is re-exported here for Tortoise discovery."""

from runplane.models.agent_run import AgentRun, CommandRecord, RunEventRecord
from runplane.models.project import Project
from runplane.models.thread import Message, Thread
from runplane.models.user import AuthSession, User

__all__ = ["AgentRun", "AuthSession", "CommandRecord", "Message", "Project", "RunEventRecord", "Thread", "User"]
