"""The logic of each command: plain async functions taking a `Bus` and an `Output`,
returning the process exit code (tests call them directly)."""
