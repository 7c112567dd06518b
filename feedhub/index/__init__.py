"""The index: what every post file says, parsed once, in the storage (SQLite or PostgreSQL).

The post files are the source of truth; the index is derived and may be rebuilt at any
time. Its write side (`write`) keeps it in step with the folder and bumps a version per
feed on every change; its read side (`read`) answers what `Site` asks and takes no lock;
`identity` holds the pure rules for permalinks and ids; `versions` tells each process
which feeds changed.
"""
