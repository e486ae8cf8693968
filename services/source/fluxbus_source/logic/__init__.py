"""Pure logic of the source service: exclusion rules, include paths, rebuild decisions;
Helm indexes, chart versions, values files and repository credentials.

Pure: no I/O. Refs, revisions, URLs and credentials are Git's
(`fluxbus_git.logic`); semver is `fluxbus_common.semver`.
"""
