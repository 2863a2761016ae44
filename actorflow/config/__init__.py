"""agentflow.toml: the configuration schema (`schema`), loading and layering (`loading`),
LLM agents' settings (`llm`), AgenticGoKit compatibility (`compat`) and readable error
messages (`messages`).

Importing this package does not import Ray.
"""

from actorflow.config.compat import IGNORED_SECTIONS
from actorflow.config.llm import LLMSettings
from actorflow.config.loading import AgentFlowConfig, load_config
from actorflow.config.schema import (
    DEFAULT_RETRYABLE_ERRORS,
    MODES,
    OVERRIDABLE,
    LLM_PROVIDERS,
    AgentConfig,
    AgentFlowMeta,
    AgentLLMConfig,
    CircuitBreakerConfig,
    LLMConfig,
    Mode,
    ObservabilityConfig,
    OrchestrationConfig,
    RetryConfig,
    RuntimeConfig,
    ServeConfig,
)

__all__ = [
    "Mode",
    "MODES",
    "AgentFlowMeta",
    "LLMConfig",
    "AgentLLMConfig",
    "LLMSettings",
    "LLM_PROVIDERS",
    "RuntimeConfig",
    "RetryConfig",
    "CircuitBreakerConfig",
    "OrchestrationConfig",
    "AgentConfig",
    "ServeConfig",
    "ObservabilityConfig",
    "AgentFlowConfig",
    "OVERRIDABLE",
    "IGNORED_SECTIONS",
    "DEFAULT_RETRYABLE_ERRORS",
    "load_config",
]
