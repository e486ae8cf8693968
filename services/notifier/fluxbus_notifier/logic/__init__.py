"""Pure logic of this service (filled by its issue). Pure: no I/O."""
