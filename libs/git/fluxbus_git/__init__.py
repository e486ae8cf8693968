"""fluxbus_git: Git access for every fluxbus service (fluxcd/pkg/git's twin).

- `client.GitClient`: resolve a ref, list refs, fetch one revision's tree
  (async; blocking work in threads, bounded by timeouts and size limits);
- `writer.GitWriter` (a `GitClient`): clone into a work tree, commit the
  caller's edits (optionally OpenPGP-signed: `signing`), push along refspecs
  (fast-forward only unless forced); `worktree`: the clone's index and
  snapshots of its files;
- `http`, `ssh`: the transports; `session`: cancellation, size limits and
  private temp files of one operation; `checkout`: writing a tree to disk;
- `errors`: the typed Git errors; `results`: what operations return;
- `logic` (pure): URLs, credentials, refs and Flux revisions, push refspecs, paths;
- `testing`: real Git servers (smart HTTP(S), mTLS, SSH, a proxy) for tests.

The only production code that imports dulwich (and pysequoia, in `signing`);
it imports `fluxbus_common` and nothing else of the project. This package
module imports nothing, so the pure `logic` modules stay cheap to import.
"""
