"""Settings of the image-reflector service, read from the environment (FLUXBUS_*).

Pure: reads only the mapping it is given. Filled by the image-reflector issue, on the
pattern of `fluxbus_source.settings` / `fluxbus_kustomize.settings`.
"""
