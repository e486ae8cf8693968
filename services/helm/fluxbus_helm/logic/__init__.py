"""Pure rules of the helm service: values merging and digests, release snapshots,
Flux's release state machine and its words. Pure: no I/O."""
