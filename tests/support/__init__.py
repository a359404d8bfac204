"""Integration-test support for regpeek.

Everything here talks to real processes on 127.0.0.1 only: a CNCF distribution registry
(``docker-registry``), a Docker-token-spec token server, a tiny plain-HTTP pusher, deterministic
image builders and ``skopeo`` as an independent oracle.  Nothing here imports regpeek, so a regpeek
bug cannot hide itself in its own fixtures.  Only :mod:`tests.support.fixtures` depends on pytest.
"""
