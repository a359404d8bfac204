"""Pure, I/O-free formats: references, digests, media types, platforms, challenges, manifests, configs.

Bytes and strings in, typed values out; no network, files, clock or host lookups
(``tests/unit/test_pure_imports.py`` holds every module here to that).
"""
