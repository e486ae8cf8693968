"""Pure logic of the source service: refs, revisions, semver, URLs, exclusions.

Pure: no I/O.
"""
