"""AI providers behind one interface (`base.Provider`); `build_provider` picks one from the settings."""

from __future__ import annotations

from .base import MalformedAnswer, Provider, ProviderConfig, ProviderError, Usage
from .builtin import BuiltinProvider
from .network import BadUrl, BlockedAddress, check_base_url

# Where each provider connects when the settings name no base URL.
DEFAULT_BASE_URLS = {
    "anthropic": "https://api.anthropic.com",
    "openai_compatible": "https://api.openai.com/v1",
    "ollama": "http://127.0.0.1:11434",
}


async def check_destination(config: ProviderConfig) -> None:
    """Refuse (a final `ProviderError`) a provider whose base URL leads to a refused address (network.py)."""
    if config.name not in DEFAULT_BASE_URLS:
        return
    try:
        await check_base_url(config.base_url, DEFAULT_BASE_URLS[config.name], config.allow_local_servers)
    except BlockedAddress as exc:  # host names and addresses only (mask_keys would hide the setting's name)
        raise ProviderError(str(exc), mask=isinstance(exc, BadUrl)) from None


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


__all__ = [
    "MalformedAnswer",
    "Provider",
    "ProviderConfig",
    "ProviderError",
    "Usage",
    "build_provider",
    "check_destination",
]
