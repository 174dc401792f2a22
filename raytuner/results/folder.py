"""One folder type for every place an experiment can be: a local path or a URI.

A :class:`Folder` is a filesystem (pyarrow's, or fsspec's through pyarrow), a path on it and
how it is shown. Local folders and object storage (``s3://``, ``gs://``...) are read the same
way; :func:`filesystem_for` is the one place a URI becomes a filesystem.

Credentials in a URI (``s3://KEY:SECRET@bucket/runs``) are never written or shown: a
:class:`Folder` keeps the URI without them (:func:`redact`) and moves them into this process's
environment, where pyarrow here and in the Ray workers this process starts reads them; Ray so
never pickles them into its experiment state in the bucket.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from raytuner.errors import SpecError, UsageError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

READ_ATTEMPTS = 20  # reads of a table a live run replaces on object storage, before giving up
SCHEMES = ("s3", "gs", "gcs", "hdfs", "abfs", "abfss")
CREDENTIALS = (
    "the credentials (AWS_ACCESS_KEY_ID/AWS_PROFILE, GOOGLE_APPLICATION_CREDENTIALS or the VM's role) "
    "and, for an S3-compatible server, AWS_ENDPOINT_URL_S3"
)


# URI query options that carry credentials (a store's keys and tokens, a presigned URL's signature)
_SECRET_OPTION = re.compile(r"secret|token|password|passwd|key|credential|signature|sas|sig$", re.IGNORECASE)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# Where pyarrow's S3 client (and every other AWS client) reads the credentials an s3:// URI carried
_S3_ENVIRONMENT = {
    "user": "AWS_ACCESS_KEY_ID",
    "password": "AWS_SECRET_ACCESS_KEY",
    "access_key": "AWS_ACCESS_KEY_ID",
    "secret_key": "AWS_SECRET_ACCESS_KEY",
    "session_token": "AWS_SESSION_TOKEN",
}


def redact(text: str) -> str:
    """``text`` with the credentials of every URI in it removed: the user info
    (``KEY:SECRET@``) and the query options that carry keys or tokens. The one function
    applied wherever raytuner records or shows a storage URI or a command line."""
    return _URI.sub(lambda match: split_credentials(match.group())[0], text)


def split_credentials(uri: str) -> tuple[str, dict[str, str]]:
    """``uri`` without its credentials, and the credentials taken out of it (``user`` and
    ``password`` from the user info, credential query options under their own names)."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri, {}
    base, mark, query = rest.partition("?")
    authority, slash, path = base.partition("/")
    credentials: dict[str, str] = {}
    userinfo, at, host = authority.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        credentials["user"] = unquote(user)
        if colon:
            credentials["password"] = unquote(password)
        authority = host
    kept = []
    for option in query.split("&") if query else ():
        name, _, value = option.partition("=")
        if _SECRET_OPTION.search(name):
            credentials[unquote(name)] = unquote(value)
        else:
            kept.append(option)
    public = f"{scheme}://{authority}{slash}{path}" + (mark + "&".join(kept) if kept else "")
    return public, credentials


def child_uri(uri: str, name: str) -> str:
    """The URI of ``name`` inside the folder ``uri``: joined onto its path, its query options kept."""
    base, mark, query = uri.partition("?")
    return f"{base.rstrip('/')}/{name}{mark}{query}"


def _use_credentials(public: str, credentials: dict[str, str]) -> None:
    """Put an s3:// URI's credentials into the environment (see the module's docstring).

    Raises:
        SpecError: credentials in another scheme's URI, or query options pyarrow does not know.
    """
    scheme = public.partition("://")[0].lower()
    unknown = sorted(set(credentials) - set(_S3_ENVIRONMENT))
    if scheme != "s3" or unknown:
        what = ", ".join(unknown) if scheme == "s3" else f"credentials in a {scheme}:// URI"
        raise SpecError(
            f"{public}: {what} cannot be used (they would be recorded with the experiment); give them in the "
            f"environment instead: {CREDENTIALS}"
        )
    given = {_S3_ENVIRONMENT[name]: value for name, value in credentials.items()}
    if "AWS_ACCESS_KEY_ID" in given and "AWS_SESSION_TOKEN" not in given:
        os.environ.pop("AWS_SESSION_TOKEN", None)  # another identity's token would not match the key
    os.environ.update(given)


def is_uri(storage: str) -> bool:
    scheme, sep, _ = storage.partition("://")
    return bool(sep and scheme)


def check_scheme(storage: str) -> str | None:
    """Why ``storage`` cannot be used for runs (an unknown scheme), or None."""
    scheme = storage.partition("://")[0].lower()
    if scheme in SCHEMES:
        return None
    return (
        f"{storage!r}: {scheme}:// is not a storage raytuner can run on; use a local or shared folder, "
        f"or object storage ({', '.join(s + '://' for s in SCHEMES)})"
    )


@dataclass(frozen=True)
class Folder:
    """A folder on some filesystem (local, S3, GCS...): the filesystem, the path on it, and
    how the folder is shown (its URI without credentials, or the local path as given)."""

    fs: pafs.FileSystem
    path: str
    display: str

    @classmethod
    def parse(cls, uri: str) -> Folder:
        """The folder at ``uri``; its credentials, if it carries any, go to the environment.

        Raises:
            SpecError: credentials that cannot be used without recording them.
            UsageError: no filesystem reaches ``uri``.
        """
        public, credentials = split_credentials(uri)
        if credentials:
            _use_credentials(public, credentials)
        base, mark, query = public.partition("?")
        public = base.rstrip("/") + mark + query
        fs, path = filesystem_for(public)
        return cls(fs, path.rstrip("/"), public)

    @classmethod
    def local(cls, path: Path, display: str | None = None) -> Folder:
        """The local folder ``path`` (resolved), shown as ``display`` (default: the path)."""
        import pyarrow.fs as pafs

        resolved = str(Path(path).expanduser().resolve())
        return cls(pafs.LocalFileSystem(), resolved, display if display is not None else resolved)

    @property
    def uri(self) -> str:
        """The folder's URI (object storage) or path, without credentials."""
        return self.display

    @property
    def name(self) -> str:
        return posixpath.basename(self.path.rstrip("/")) or self.display

    @property
    def parent_uri(self) -> str:
        """The URI of the folder that holds this one (its query options kept)."""
        base, mark, query = self.uri.partition("?")
        return base.rsplit("/", 1)[0] + mark + query

    @property
    def local_path(self) -> Path | None:
        """The folder on this machine's disk; None on object storage."""
        import pyarrow.fs as pafs

        return Path(self.path) if isinstance(self.fs, pafs.LocalFileSystem) else None

    def join(self, *parts: str) -> str:
        return posixpath.join(self.path, *parts)

    def child(self, name: str) -> Folder:
        display = child_uri(self.display, name) if is_uri(self.display) else posixpath.join(self.display, name)
        return Folder(self.fs, self.join(name), display)

    def exists(self) -> bool:
        import pyarrow.fs as pafs

        return bool(self.fs.get_file_info(self.path).type == pafs.FileType.Directory)

    def read_table(self, name: str, columns: list[str] | None = None) -> Any:
        """The Parquet table ``name`` in this folder, as one whole version of it.

        A live run replaces its tables every few seconds. A local file is replaced by a rename,
        so one read sees one version; on object storage a read is several requests (the size,
        then the bytes), which a replacement in between mixes: there the table is read until
        two reads in a row agree and parse.

        Raises:
            OSError: it cannot be read; pyarrow.ArrowException: it is not a whole Parquet file.
        """
        import time

        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.local_path is not None:
            return pq.read_table(self.join(name), columns=columns, filesystem=self.fs)
        last: bytes | None = None
        problem: Exception | None = None
        for attempt in range(READ_ATTEMPTS):
            with self.fs.open_input_stream(self.join(name)) as stream:
                whole = stream.read()
            try:
                table = pq.read_table(pa.BufferReader(whole), columns=columns)
            except (OSError, pa.ArrowException) as exc:  # the size of one version, the bytes of another
                problem, last = exc, None
            else:
                if whole == last:
                    return table
                last = whole
            time.sleep(min(0.05 * (attempt + 1), 0.5))
        if problem is not None and last is None:
            raise problem
        return pq.read_table(pa.BufferReader(last), columns=columns)

    def kind_of(self, name: str) -> str:
        """'file', 'dir' or 'missing' for ``name`` inside this folder."""
        import pyarrow.fs as pafs

        info = self.fs.get_file_info(self.join(name))
        return {pafs.FileType.File: "file", pafs.FileType.Directory: "dir"}.get(info.type, "missing")

    def entries(self, name: str = "") -> list[tuple[str, bool]]:
        """(name, is_dir) of everything directly inside this folder (or its subfolder ``name``)."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self.join(name) if name else self.path, allow_not_found=True)
        return sorted(
            (posixpath.basename(info.path), info.type == pafs.FileType.Directory)
            for info in self.fs.get_file_info(selector)
        )

    def subfolders(self) -> list[str]:
        return [name for name, is_dir in self.entries() if is_dir]

    def read_bytes(self, name: str) -> bytes:
        with self.fs.open_input_stream(self.join(name)) as stream:
            return bytes(stream.read())

    def read_json(self, name: str) -> Any:
        return json.loads(self.read_bytes(name))


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (pyarrow's S3 errors run to several)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def filesystem_for(uri: str, *, writing: bool = False) -> tuple[pafs.FileSystem, str]:
    """The filesystem and path of ``uri``: pyarrow's own (s3, gs, hdfs...), else fsspec's.

    The one place a URI becomes a filesystem, for reading and for ``export -o``.

    Raises:
        UsageError: no filesystem knows the scheme, the storage cannot be reached (pyarrow
            resolves an S3 bucket's region when opening it), or ``writing`` to fsspec's
            ``memory://``, which would vanish when the command exits.
    """
    import pyarrow as pa
    import pyarrow.fs as pafs

    scheme = uri.partition("://")[0]
    try:
        return pafs.FileSystem.from_uri(uri)  # type: ignore[no-any-return]
    except OSError as exc:
        raise UsageError(f"cannot reach {uri}: {first_line(exc)}") from exc
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as native_error:
        unknown = UsageError(
            f"cannot open {uri}: no filesystem for {scheme}:// (expected a local path, or a URI pyarrow or "
            f"fsspec can open such as s3://, gs://, hdfs://; pyarrow said: {first_line(native_error)})"
        )
        try:
            import fsspec
        except ImportError:
            raise unknown from native_error
        try:
            fs, path = fsspec.core.url_to_fs(uri)
        except (ImportError, ValueError, OSError) as exc:
            raise unknown from exc
    if writing and "memory" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        raise UsageError(f"cannot write {uri}: memory:// lives in this process and would be gone when it exits")
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path
