"""AI providers behind one interface (`base.Provider`); `build_provider` picks one from the settings."""

from __future__ import annotations

from .base import MalformedAnswer, Provider, ProviderConfig, ProviderError, Usage
from .builtin import BuiltinProvider


def build_provider(config: ProviderConfig) -> Provider:
    if config.name == "builtin":
        return BuiltinProvider()
    if config.name == "anthropic":
        from .anthropic_provider import AnthropicProvider

        return AnthropicProvider(config)
    if config.name == "ollama":
        from .ollama_provider import OllamaProvider

        return OllamaProvider(config)
    if config.name == "openai_compatible":
        from .openai_provider import OpenAICompatibleProvider

        return OpenAICompatibleProvider(config)
    raise ProviderError(
        f"Unknown AI provider {config.name!r}: choose builtin, anthropic, ollama or openai_compatible."
    )


__all__ = ["MalformedAnswer", "Provider", "ProviderConfig", "ProviderError", "Usage", "build_provider"]
