"""Pure logic of Git access: URLs, credentials, refs and revisions, paths.

Pure: no I/O. Nothing here imports dulwich, a socket or a subprocess; the
transports (`fluxbus_git.client`, `http`, `ssh`, `checkout`) do the I/O.
"""
