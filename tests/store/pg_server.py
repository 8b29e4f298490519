"""A throwaway PostgreSQL server for the store tests and the load benchmark: initdb into a directory, listen on
loopback only, stop and forget. Run as root it runs the server as an unprivileged system user.

    python tests/store/pg_server.py start DIR [--durable]   # prints the URL (postgresql://qharness@127.0.0.1:PORT/postgres)
    python tests/store/pg_server.py stop DIR

The role `qh_secret` (password PASSWORD below) must authenticate with scram-sha-256, so the tests can show that
a password never reaches a message; every other role is trusted on 127.0.0.1.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
from pathlib import Path

SUPERUSER = "qharness"
SECRET_ROLE = "qh_secret"
PASSWORD = "s3cret-Pa55-do-not-print"
_RUN_AS = "postgres"
_FALLBACK_USER = "qharness-pg"


def bindir() -> Path | None:
    """Return the directory of initdb and pg_ctl (PATH, then pg_config, then Debian's layout), or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _user() -> str | None:
    """Return the unprivileged user to run the server as when we are root (creating one if needed)."""
    if os.geteuid() != 0:
        return None
    for name in (_RUN_AS, _FALLBACK_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", _FALLBACK_USER], check=True)
    return _FALLBACK_USER


def _run(cmd: list[str], user: str | None) -> None:
    """Run `cmd` (as `user` when given), raising with its output on failure."""
    full = ["runuser", "-u", user, "--", *cmd] if user else cmd
    done = subprocess.run(full, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(directory: str | Path, *, durable: bool = False) -> str:
    """Create and start a server in `directory`; return its superuser URL. Tests skip fsync unless `durable`."""
    bins = bindir()
    if bins is None:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql")
    user = _user()
    data = Path(directory) / "data"
    data.mkdir(parents=True, exist_ok=True)
    if user:
        shutil.chown(directory, user)
        shutil.chown(data, user)
    _run([str(bins / "initdb"), "-D", str(data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8", "--no-sync"], user)
    hba = data / "pg_hba.conf"
    rules = f"host all {SECRET_ROLE} 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\n"
    hba.write_text(rules + hba.read_text())
    settings = "-c listen_addresses=127.0.0.1 -c max_connections=200"
    if not durable:
        settings += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    for _attempt in range(3):
        port = _free_port()
        opts = f"-p {port} -k {data} {settings}"
        try:
            _run(
                [str(bins / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(data / "server.log"), "-w", "start"], user
            )
            break
        except RuntimeError:
            if _attempt == 2:
                raise
    (Path(directory) / "port").write_text(str(port))
    url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
    _create_secret_role(url)
    return url


def _create_secret_role(url: str) -> None:
    """Create the password-protected role the credential tests log in as."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f"CREATE ROLE {SECRET_ROLE} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")


def stop(directory: str | Path) -> None:
    """Stop the server in `directory` (immediate mode: its data is thrown away)."""
    bins = bindir()
    data = Path(directory) / "data"
    if bins is None or not (data / "postmaster.pid").exists():
        return
    _run([str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], _user())


def main(argv: list[str]) -> int:
    """Command line: start DIR [--durable] | stop DIR."""
    if len(argv) < 2 or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "start":
        print(start(argv[1], durable="--durable" in argv[2:]))
    else:
        stop(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
