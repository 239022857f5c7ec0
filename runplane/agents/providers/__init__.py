"""Model providers for the agent executor: one stream-of-events interface, several backends."""

from .base import (
    ChatMessage,
    CollectedReply,
    ContentDelta,
    Finished,
    ModelInfo,
    ModelProvider,
    ModelProviderError,
    ProviderEvent,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
    UsageReport,
    collect,
)
from .openai_compatible import (
    OPENROUTER_BASE_URL,
    KeyCheck,
    OpenAICompatibleProvider,
    RetryPolicy,
)
from .registry import ModelCache, available_models, build_provider, default_model_cache
from .scripted import SCRIPTED_MODEL_ID, ScriptedProvider

__all__ = [
    "OPENROUTER_BASE_URL",
    "SCRIPTED_MODEL_ID",
    "ChatMessage",
    "CollectedReply",
    "ContentDelta",
    "Finished",
    "KeyCheck",
    "ModelCache",
    "ModelInfo",
    "ModelProvider",
    "ModelProviderError",
    "OpenAICompatibleProvider",
    "ProviderEvent",
    "RetryPolicy",
    "ScriptedProvider",
    "ToolCall",
    "ToolCallRequest",
    "ToolSpec",
    "Usage",
    "UsageReport",
    "available_models",
    "build_provider",
    "collect",
    "default_model_cache",
]
