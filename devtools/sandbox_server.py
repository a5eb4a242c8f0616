"""Run localstripe (a development and test tool, GPL-3.0, never shipped) on 127.0.0.1 with
a store file of our own.

Stock localstripe binds every interface and pickles its whole store to the fixed file
/tmp/localstripe.pickle, so two runs at once would share (and clobber) one store. This
launcher imports localstripe's aiohttp app, points the store at `--store` (or keeps it
in memory with `--store ''`), binds the given host and port (0: any free port), prints
`PORT <n>` on stdout once the socket listens, then serves.

    python -m devtools.sandbox_server --port 0 --store /tmp/x/store.pickle

It imports nothing from Minga, so `Sandbox` runs it by file path (no Flask import).
With `--exit-with-parent` it exits as soon as its stdin reaches end of file, which
happens when the process that started it dies, however it dies.
"""
from __future__ import annotations

import argparse
import errno
import logging
import os
import pickle
import shutil
import socket
import sys
import threading


def patch_store(path: str | None) -> None:
    """Make localstripe's Store load from and save to `path` (None: memory only)."""
    from localstripe import resources

    def try_load_from_disk(self):
        if not path:
            return
        try:
            with open(path, "rb") as f:
                old = pickle.load(f)
        except FileNotFoundError:
            return
        self.clear()
        self.update(old)

    def dump_to_disk(self):
        if not path:
            return
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)  # a reader never sees half a file

    resources.Store.try_load_from_disk = try_load_from_disk
    resources.Store.dump_to_disk = dump_to_disk


def bind(host: str, port: int, any_port_if_busy: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError as exc:
        if not (any_port_if_busy and port and exc.errno == errno.EADDRINUSE):
            sock.close()
            raise
        sock.close()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((host, 0))
    sock.listen(128)
    return sock


def _exit_when_stdin_closes(cleanup_dir: str | None) -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        if cleanup_dir:  # the parent died without stopping us: remove its private files
            shutil.rmtree(cleanup_dir, ignore_errors=True)
        os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--any-port-if-busy", action="store_true",
                        help="fall back to a free port when --port is taken")
    parser.add_argument("--store", default="",
                        help="pickle file for the store; empty: keep it in memory only")
    parser.add_argument("--load", action="store_true",
                        help="start from the store file's content instead of from scratch")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="exit when stdin is closed (the parent died or stopped us)")
    parser.add_argument("--cleanup-dir", default="",
                        help="with --exit-with-parent: a directory to remove on that exit")
    args = parser.parse_args(argv)

    patch_store(args.store or None)
    from aiohttp import web
    from localstripe import server
    if args.load:
        server.store.try_load_from_disk()

    sock = bind(args.host, args.port, args.any_port_if_busy)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    # Nothing else goes to stdout: the parent stops reading it after the first line.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    if args.exit_with_parent:
        threading.Thread(target=_exit_when_stdin_closes, args=(args.cleanup_dir or None,),
                         daemon=True).start()

    access = logging.getLogger("aiohttp.access")
    access.setLevel(logging.INFO)
    access.addHandler(logging.StreamHandler(sys.stderr))
    web.run_app(server.app, sock=sock, access_log=access, print=None,
                handle_signals=True)


if __name__ == "__main__":
    main()
