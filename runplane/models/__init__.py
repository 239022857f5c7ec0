"""Tortoise models, one module per aggregate. Every model is re-exported here for Tortoise discovery."""

from runplane.models.project import Project
from runplane.models.thread import Message, Thread
from runplane.models.user import AuthSession, User

__all__ = ["AuthSession", "Message", "Project", "Thread", "User"]
