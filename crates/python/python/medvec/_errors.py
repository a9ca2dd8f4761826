"""The exceptions medvec raises. Messages are the CLI's one-line messages; payload values in
them are hidden unless ``medvec.set_verbose(True)``."""


class Error(Exception):
    """Every medvec error."""


class StoreError(Error):
    """The store cannot do it: no such store or collection, a read-only or closed handle, an I/O
    failure, a newer format."""


class CorruptFile(Error):
    """A checksum or structure check failed; the message names the file."""


class LockedError(Error):
    """Another writer holds the store's lock (open it with ``read_only=True`` to read)."""


class InvalidInput(Error, ValueError):
    """Bad arguments, records, vectors, queries or filters; the message names the argument."""


__all__ = ["Error", "StoreError", "CorruptFile", "LockedError", "InvalidInput"]
