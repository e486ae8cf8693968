"""The Protocols the image-reflector reconcilers take (the store through
`fluxbus_common.ports`, plus this service's outside systems).

Pure: no I/O.
"""
