"""A readable name for the device of a session, from its user agent ("Firefox on Linux")."""

from __future__ import annotations


def describe_device(user_agent: str | None) -> str | None:
    if not user_agent:
        return None
    ua = user_agent.lower()
    browser = next(
        (
            name
            for key, name in (
                ("edg/", "Edge"),
                ("opr/", "Opera"),
                ("firefox/", "Firefox"),
                ("chrome/", "Chrome"),
                ("safari/", "Safari"),
                ("curl/", "curl"),
                ("python-httpx", "httpx"),
                ("python", "Python"),
            )
            if key in ua
        ),
        None,
    )
    system = next(
        (
            name
            for key, name in (
                ("android", "Android"),
                ("iphone", "iPhone"),
                ("ipad", "iPad"),
                ("windows", "Windows"),
                ("mac os", "macOS"),
                ("linux", "Linux"),
            )
            if key in ua
        ),
        None,
    )
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or user_agent[:60]
