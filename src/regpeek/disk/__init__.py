"""Files on disk: atomic writes and locks, the cache, OCI layouts, layer tars, unpacking and flattening."""
