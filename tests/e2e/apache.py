#!/usr/bin/python3
"""Runs a real Apache httpd (Debian's /usr/sbin/apache2) with mod_jwtauthz for e2e tests: a
generated config in a temp dir (ServerRoot, logs, pid, runtime dir, mutexes, cgid socket all
inside it), one MPM, the modules it names from /usr/lib/apache2/modules plus our build's
mod_jwtauthz.so, listening on 127.0.0.1:<free port> only. Never reads or touches /etc/apache2.

    with Apache(workdir, "event", module_path, site_conf) as httpd:
        httpd.get("/orders/42", headers={...}) -> (status, headers, body)
"""

import http.client
import os
import pwd
import signal
import socket
import subprocess
import time
from pathlib import Path

APACHE = os.environ.get("JWTAUTHZ_TEST_APACHE", "/usr/sbin/apache2")
MODULES_DIR = Path(os.environ.get("JWTAUTHZ_TEST_APACHE_MODULES", "/usr/lib/apache2/modules"))
MPMS = ("event", "worker", "prefork")
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0
PORT_ATTEMPTS = 5
HTTP_TIMEOUT_S = 10.0

# What every test server loads besides the MPM and mod_jwtauthz: AuthType/AuthName (authn_core),
# Require (authz_core), Require valid-user (authz_user), ScriptAliasMatch (alias), the CGI
# backend that prints its environment (cgid: works under every MPM), Header (headers), and an
# access log with %u (log_config).
BASE_MODULES = ("authn_core", "authz_core", "authz_user", "alias", "cgid", "headers",
                "log_config")

# The backend: a CGI script that answers with the variables an application would read.
ENV_CGI = """#!/usr/bin/python3
import json, os
keep = ("REMOTE_USER", "AUTH_TYPE", "REQUEST_URI", "HTTP_AUTHORIZATION", "QUERY_STRING")
env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("JWTAUTHZ_")}
body = json.dumps(env)
print("Content-Type: application/json")
print("Content-Length: %d" % len(body.encode()))
print()
print(body, end="")
"""

MPM_TUNING = {
    # Small, fixed pools: enough threads to spread requests over several clients, few enough
    # that "connections are reused" is measurable against the daemon's counters.
    "event": "StartServers 2\nServerLimit 2\nThreadsPerChild 4\nThreadLimit 4\n"
             "MaxRequestWorkers 8\nMinSpareThreads 1\nMaxSpareThreads 8\n",
    "worker": "StartServers 2\nServerLimit 2\nThreadsPerChild 4\nThreadLimit 4\n"
              "MaxRequestWorkers 8\nMinSpareThreads 1\nMaxSpareThreads 8\n",
    "prefork": "StartServers 3\nMinSpareServers 1\nMaxSpareServers 4\nServerLimit 4\n"
               "MaxRequestWorkers 4\n",
}


def builtin_modules():
    """Modules compiled into the apache2 binary (`apache2 -l`): loading one again is an error."""
    out = subprocess.run([APACHE, "-l"], capture_output=True, text=True, timeout=30).stdout
    return {line.strip() for line in out.splitlines() if line.strip().endswith(".c")}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_user():
    """httpd refuses to serve as root: as root, children run as www-data (Debian's user)."""
    if os.geteuid() != 0:
        return None
    for name in ("www-data", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither www-data nor nobody exists")


class Apache:
    """One httpd (parent and children) with its own temp dir, config and logs."""

    def __init__(self, workdir, mpm, module_path, site_conf, log_level="info"):
        if mpm not in MPMS:
            raise ValueError(f"unknown MPM {mpm}")
        self.dir = Path(workdir)
        self.mpm = mpm
        self.module_path = Path(module_path)
        self.site_conf = site_conf
        self.log_level = log_level
        self.conf_path = self.dir / "httpd.conf"
        self.error_log = self.dir / "error.log"
        self.access_log = self.dir / "access.log"
        self.pid_file = self.dir / "httpd.pid"
        self.run_dir = self.dir / "run"
        self.htdocs = self.dir / "htdocs"
        self.cgi = self.dir / "cgi" / "env.cgi"
        self.port = None
        self.proc = None
        self.user = run_user()

    # -- config ------------------------------------------------------------------------------
    def _prepare_tree(self):
        for d in (self.run_dir, self.htdocs, self.cgi.parent):
            d.mkdir(parents=True, exist_ok=True)
        # Children (www-data when we are root) read the CGI script and docroot.
        for d in (self.dir, self.htdocs, self.cgi.parent):
            d.chmod(0o755)
        self.cgi.write_text(ENV_CGI)
        self.cgi.chmod(0o755)
        (self.htdocs / "healthz").write_text("ok\n")

    def config_text(self, port):
        loads = [f"LoadModule mpm_{self.mpm}_module {MODULES_DIR}/mod_mpm_{self.mpm}.so"]
        builtin = builtin_modules()
        loads += [f"LoadModule {m}_module {MODULES_DIR}/mod_{m}.so" for m in BASE_MODULES
                  if f"mod_{m}.c" not in builtin]
        loads.append(f"LoadModule jwtauthz_module {self.module_path}")
        user = f"User {self.user}\nGroup {self.user if self.user != 'nobody' else 'nogroup'}\n" \
            if self.user else ""
        return f"""# Generated by tests/e2e/apache.py; nothing here refers to /etc/apache2.
ServerRoot "{self.dir}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{self.pid_file}"
DefaultRuntimeDir "{self.run_dir}"
Mutex file:{self.run_dir} default
ErrorLog "{self.error_log}"
LogLevel warn jwtauthz:debug authz_core:{self.log_level}
{chr(10).join(loads)}
{user}ScriptSock "{self.run_dir}/cgid.sock"
{MPM_TUNING[self.mpm]}
LogFormat "%h %u \\"%r\\" %>s" jwtauthz_test
CustomLog "{self.access_log}" jwtauthz_test
DocumentRoot "{self.htdocs}"
KeepAlive On
Timeout 30

{self.site_conf}
"""

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self):
        self._prepare_tree()
        last = ""
        for _ in range(PORT_ATTEMPTS):
            self.port = free_port()
            self.conf_path.write_text(self.config_text(self.port))
            # A session of its own: stop() can then end every process httpd started.
            with open(self.dir / "stderr.log", "ab") as err:
                self.proc = subprocess.Popen(
                    [APACHE, "-f", str(self.conf_path), "-DFOREGROUND"],
                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                    env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"})
            if self._wait_ready():
                return self
            last = self.log() + (self.dir / "stderr.log").read_text(errors="replace")
            self.stop()
            if "Address already in use" not in last:
                break
        raise RuntimeError(f"apache2 ({self.mpm}) did not start:\n{last}")

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                status, _, _ = self.request("GET", "/healthz")
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Children (and cgid's daemon) share the session: none may outlive the test.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def pids(self):
        """The parent and every process in its session (children, cgid daemon)."""
        if self.proc is None:
            return []
        out = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == self.proc.pid:  # session id
                out.append(int(entry.name))
        return out

    def log(self):
        try:
            return self.error_log.read_text(errors="replace")
        except OSError:
            return ""

    # -- HTTP --------------------------------------------------------------------------------
    def request(self, method, path, headers=None, body=None):
        """One request on a fresh connection: (status, {lowercased name: value}, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT_S)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)


def config_test(conf_text, workdir):
    """apache2 -t on a config: (exit code, output)."""
    path = Path(workdir) / "configtest.conf"
    path.write_text(conf_text)
    p = subprocess.run([APACHE, "-t", "-f", str(path)], capture_output=True, text=True,
                       timeout=60, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"})
    return p.returncode, p.stdout + p.stderr
