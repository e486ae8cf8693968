"""The CLI's pure rules (no bus, no files, no plotting library).

Pure: no I/O.
"""
