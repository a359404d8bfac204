"""Talking to registries: HTTP transport, authentication, credentials, and the registry client.

The client and its request loop are written once in ``_async/``; ``_sync/`` is generated from it.
"""
