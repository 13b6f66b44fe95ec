from __future__ import annotations


def base_url(url: str) -> str:
    """Validates and normalises the server's base URL (``http(s)://host:port``)."""
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://", "ws://", "wss://")):
        raise ValueError(f"invalid server URL {url!r}: use http(s)://host:port")
    return url


def ws_url(url: str, path: str) -> str:
    url = base_url(url)
    if url.startswith("http://"):
        url = "ws://" + url[len("http://") :]
    elif url.startswith("https://"):
        url = "wss://" + url[len("https://") :]
    return url + path


def http_url(url: str) -> str:
    url = base_url(url)
    if url.startswith("ws://"):
        return "http://" + url[len("ws://") :]
    if url.startswith("wss://"):
        return "https://" + url[len("wss://") :]
    return url
