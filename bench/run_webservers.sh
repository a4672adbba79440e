#!/usr/bin/env bash
# Web servers in one run on one box (bench/README.md, "Web servers"): wrk on a protected static
# file, 10,000 distinct RS256 tokens rotated; Apache + mod_jwtauthz against Apache with
# mod_auth_openidc (same JWKS over HTTPS, same tokens), nginx + ngx_http_jwtauthz_module against
# nginx with no auth. All on 127.0.0.1 in a temp dir, stopped on exit. Usage: $0 [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
py=/usr/bin/python3
stats=("$py" "$root/bench/webservers_stats.py")

# Settings, from the environment. Every wrk run is bounded by DURATION (at most 60 s).
DURATION=${DURATION:-20}           # each measured wrk run, seconds
WARMUP_S=${WARMUP_S:-5}            # wrk on other tokens before each configuration's runs
WRK_THREADS=${WRK_THREADS:-2}
CONNS=${CONNS:-32}
TOKENS=${TOKENS:-10000}            # distinct tokens rotated in the measured runs
WARMUP_TOKENS=${WARMUP_TOKENS:-2000}
APACHE_THREADS=${APACHE_THREADS:-32} # ThreadsPerChild; two children, a fixed pool (see README)
NGINX_WORKERS=${NGINX_WORKERS:-1}  # worker_processes, the same for both nginx configurations
DAEMON_THREADS=${DAEMON_THREADS:-0} # jwtauthzd "threads" (0: one per CPU)
REPS=${REPS:-1}                    # interleaved runs per configuration; ratios use the median
ONLY=${ONLY:-apache,nginx}         # which pairs to run
PERF=${PERF:-0}                    # 1: after the measured runs, perf record one more run of each
WORK=${WORK:-}                     # kept (keys and tokens reused) when given
if ((DURATION > 60 || WARMUP_S > 60)); then
    echo "run_webservers: DURATION and WARMUP_S are at most 60 s" >&2
    exit 2
fi

for f in /usr/bin/wrk /usr/sbin/apache2 /usr/sbin/nginx \
    /usr/lib/apache2/modules/mod_auth_openidc.so "$build/daemon/jwtauthzd" \
    "$build/client/apache/mod_jwtauthz.so" "$build/client/nginx/ngx_http_jwtauthz_module.so" \
    "$build/bench/bench_mint_tokens"; do
    if [[ ! -e $f ]]; then
        echo "run_webservers: missing $f (scripts/install-deps.sh; cmake --build $build)" >&2
        exit 1
    fi
done

if [[ -n $WORK ]]; then
    mkdir -p "$WORK"
    work=$(cd "$WORK" && pwd)
else
    work=$(mktemp -d /tmp/jwtauthz-wbench.XXXXXX)
fi
# Run as root, httpd's and nginx's workers become www-data: they must reach the docroot and the
# daemon's socket, nothing else in here.
chmod 0711 "$work"
mkdir -p "$work/runs"
rm -f "$work"/runs/*.txt "$work"/perf-*
daemon_pid=
cleanup() {
    stop_servers
    stop_daemon
    "$py" "$root/tests/tools/https_server.py" stop --state "$work/jwks-srv" >/dev/null 2>&1 || true
    [[ -n $WORK ]] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
say() { printf '== %s\n' "$*" >&2; }
free_port() {
    "$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
run_user=
[[ $EUID == 0 ]] && run_user=www-data

ISS=https://bench.test/
AUD=api://bench
PREFIX=arn:aws:execute-api:local:0:bench/prod
FILE_PATH=/protected/index.html

# ---- keys, tokens, the protected file, the JWKS over HTTPS (setup: not measured) ---------------
keys=$work/keys
[[ -f $keys/rs256-2.pem ]] || "$py" "$root/tests/tools/mint.py" keygen "$keys" >/dev/null
tokens=$work/tokens.txt
warm_tokens=$work/tokens-warmup.txt
want=$((TOKENS + WARMUP_TOKENS))
# Tokens live 24 h; a kept work dir reuses them for 12 h.
if [[ ! -f $work/tokens-all.txt || $(wc -l <"$work/tokens-all.txt") -ne $want ||
    -n $(find "$work/tokens-all.txt" -mmin +720) ]]; then
    say "minting $want RS256 tokens (bench_mint_tokens, OpenSSL directly, on every core)"
    "$build/bench/bench_mint_tokens" RS256 "$keys/rs256-1.pem" rs256-1 "$ISS" "$AUD" "$want" \
        "$(nproc)" 86400 >"$work/tokens-all.tmp"
    mv "$work/tokens-all.tmp" "$work/tokens-all.txt"
fi
head -n "$WARMUP_TOKENS" "$work/tokens-all.txt" >"$warm_tokens"
tail -n "$TOKENS" "$work/tokens-all.txt" >"$tokens"

htdocs=$work/htdocs
mkdir -p "$htdocs/protected"
# A few hundred bytes, as an API's small JSON answer or a tiny page would be.
{
    echo '<!doctype html><html><head><title>protected</title></head><body>'
    for i in $(seq 6); do
        echo "<p>line $i of a small protected page, served as a static file.</p>"
    done
    echo '</body></html>'
} >"$htdocs/protected/index.html"
echo ok >"$htdocs/healthz"
chmod -R a+rX "$htdocs"

# The published set: the signing key and the next one (a rotation in progress), as an issuer
# publishes it. Both servers fetch this same document over HTTPS.
mkdir -p "$work/jwks-docroot"
"$py" - "$keys" "$work/jwks-docroot/jwks.json" <<'EOF'
import json, sys
keys = [json.load(open(f"{sys.argv[1]}/rs256-{i}.jwks.json"))["keys"][0] for i in (1, 2)]
json.dump({"keys": keys}, open(sys.argv[2], "w"))
EOF
"$py" "$root/tests/tools/https_server.py" stop --state "$work/jwks-srv" >/dev/null 2>&1 || true
srv=$("$py" "$root/tests/tools/https_server.py" start --docroot "$work/jwks-docroot" \
    --state "$work/jwks-srv")
jwks_url=$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["base_url"])' "$srv")/jwks.json
ca_file=$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["ca_file"])' "$srv")
chmod a+rx "$work/jwks-srv"
chmod a+r "$ca_file"

"${stats[@]}" check-tokens "$keys" "$ISS" "$AUD" >"$work/check-tokens.txt"

# ---- jwtauthzd ---------------------------------------------------------------------------------
listen_group=
[[ -n $run_user ]] && listen_group=", \"listen_group\": \"$run_user\""
cat >"$work/jwtauthz.conf" <<EOF
{
  "listen": "$work/d.sock", "admin_listen": "$work/a.sock", "cache_dir": "$work/cache",
  "threads": $DAEMON_THREADS, "log_level": "warn"$listen_group,
  "issuers": [{ "issuer": "$ISS", "jwks_uri": "$jwks_url", "ca_file": "$ca_file",
                "audiences": ["$AUD"], "algorithms": ["RS256"],
                "context_claims": ["sub", "scope"] }],
  "rules": [
    { "resource": "arn:aws:execute-api:*:*:*/*/GET/protected/*", "scopes": ["orders:read"] }
  ],
  "decision_cache": { "ttl": 300, "max_entries": 100000 }
}
EOF
ctl() { "$build/client/ctl/jwtauthzctl" -s "$work/d.sock" -a "$work/a.sock" "$@"; }
start_daemon() { # a fresh daemon: an empty decision cache
    stop_daemon
    rm -f "$work/d.sock" "$work/a.sock"
    "$build/daemon/jwtauthzd" -f -c "$work/jwtauthz.conf" >>"$work/daemon.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 100); do
        ctl stats >/dev/null 2>&1 && return 0
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "jwtauthzd did not start; log:" >&2
    cat "$work/daemon.log" >&2
    exit 1
}
stop_daemon() {
    [[ -n $daemon_pid ]] || return 0
    kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
    daemon_pid=
}

# ---- the servers -------------------------------------------------------------------------------
# Both Apache configurations differ only in the auth module and its lines: same MPM, same fixed
# pool of 2 x APACHE_THREADS threads (no children started or stopped during a run), keep-alive
# without a request limit, no access log, the same docroot.
apache_conf() { # DIR PORT AUTH(jwtauthz|openidc|none)
    local dir=$1 port=$2 auth=$3 mods=/usr/lib/apache2/modules
    local user_lines="" auth_lines=""
    [[ -n $run_user ]] && user_lines="User $run_user
Group $run_user"
    if [[ $auth == jwtauthz ]]; then
        auth_lines="LoadModule jwtauthz_module $build/client/apache/mod_jwtauthz.so
JwtAuthzSocket $work/d.sock
JwtAuthzResourcePrefix $PREFIX
JwtAuthzTimeout 2
<Location \"/protected\">
    AuthType jwtauthz
    AuthName \"bench\"
    Require valid-user
</Location>"
    elif [[ $auth == openidc ]]; then
        # mod_auth_openidc's own sample (auth_openidc.conf, "OAuth 2.0 Resource Server Settings"):
        # local JWT validation against the issuer's JWKS URI; its mod_authz_core "Require claim"
        # provider checks what the JWT validation does not (issuer, audience, the scope). Scopes
        # are separated by single spaces (RFC 6749 §3.3); a backslash would not survive httpd's
        # word splitting of the Require line, so no "\s".
        auth_lines="LoadModule auth_openidc_module $mods/mod_auth_openidc.so
OIDCOAuthVerifyJwksUri $jwks_url
OIDCCABundlePath $ca_file
OIDCOAuthRemoteUserClaim sub
<Location \"/protected\">
    AuthType oauth20
    AuthName \"bench\"
    <RequireAll>
        Require valid-user
        Require claim iss:$ISS
        Require claim aud:$AUD
        Require claim \"scope~(^| )orders:read( |\$)\"
    </RequireAll>
</Location>"
    fi
    mkdir -p "$dir/run"
    cat >"$dir/httpd.conf" <<EOF
# Generated by bench/run_webservers.sh; nothing here refers to /etc/apache2.
ServerRoot "$dir"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$dir/httpd.pid"
DefaultRuntimeDir "$dir/run"
Mutex file:$dir/run default
ErrorLog "$dir/error.log"
LogLevel warn
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authn_core_module $mods/mod_authn_core.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule authz_user_module $mods/mod_authz_user.so
LoadModule mime_module $mods/mod_mime.so
$user_lines
StartServers 2
ServerLimit 2
ThreadsPerChild $APACHE_THREADS
ThreadLimit $APACHE_THREADS
MaxRequestWorkers $((2 * APACHE_THREADS))
MinSpareThreads 1
MaxSpareThreads $((2 * APACHE_THREADS))
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 15
Timeout 30
TypesConfig /dev/null
AddType text/html .html
DocumentRoot "$htdocs"
# As Debian's apache2.conf has it: without this httpd looks for six .htaccess files per request.
<Directory "/">
    AllowOverride None
</Directory>
$auth_lines
EOF
}

nginx_conf() { # DIR PORT AUTH(jwtauthz|jwtauthzcache|none)
    local dir=$1 port=$2 auth=$3 load="" on="" global=""
    if [[ $auth == jwtauthz* ]]; then
        load="load_module $build/client/nginx/ngx_http_jwtauthz_module.so;"
        global="jwtauthz_socket $work/d.sock;
    jwtauthz_resource_prefix $PREFIX;
    jwtauthz_timeout 2s;"
        on="jwtauthz on;"
    fi
    # The worker's own decision cache (docs/nginx.md), sized for every token of the run.
    [[ $auth == jwtauthzcache ]] && on="$on jwtauthz_cache $((TOKENS + WARMUP_TOKENS)) max_ttl=300s;"
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
# Generated by bench/run_webservers.sh; nothing here refers to /etc/nginx.
${run_user:+user $run_user;}
worker_processes $NGINX_WORKERS;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
$load
events { worker_connections 1024; }
http {
    access_log off;
    # Debian's nginx.conf: header and file leave in one segment rather than two.
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 15s;
    types { text/html html; }
    default_type application/octet-stream;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    $global
    server {
        listen 127.0.0.1:$port;
        root $htdocs;
        location /protected/ { $on }
        location = /healthz { }
    }
}
EOF
}

# Both servers of a pair run at once on their own ports and their runs alternate, so a burst of
# other load on the box hits both sides alike; the idle one costs nothing meanwhile.
declare -A port_of sid_of
stop_server() { # NAME
    local sid=${sid_of[$1]:-}
    [[ -n $sid ]] || return 0
    kill -TERM "$sid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$sid" 2>/dev/null || break
        sleep 0.1
    done
    # Children share the session: none may outlive the run.
    kill -KILL -- "-$sid" 2>/dev/null || true
    wait "$sid" 2>/dev/null || true
    unset "sid_of[$1]"
}
stop_servers() {
    local name
    for name in "${!sid_of[@]}"; do stop_server "$name"; done
}
start_server() { # KIND(apache|nginx) AUTH: the server KIND-AUTH, started and checked
    local kind=$1 auth=$2 name=$1-$2 dir=$work/$1-$2 port
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 0755 "$dir"
    port=$(free_port)
    if [[ $kind == apache ]]; then
        apache_conf "$dir" "$port" "$auth"
        setsid env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C \
            /usr/sbin/apache2 -f "$dir/httpd.conf" -DFOREGROUND >"$dir/stderr.log" 2>&1 &
    else
        nginx_conf "$dir" "$port" "$auth"
        setsid /usr/sbin/nginx -p "$dir" -c "$dir/nginx.conf" -g "daemon off;" \
            >"$dir/stderr.log" 2>&1 &
    fi
    sid_of[$name]=$!
    port_of[$name]=$port
    for _ in $(seq 150); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then
            check "$name"
            return 0
        fi
        kill -0 "${sid_of[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "$name did not start:" >&2
    cat "$dir/stderr.log" "$dir/error.log" >&2 2>/dev/null || true
    exit 1
}

# ---- checks and runs ---------------------------------------------------------------------------
# What each configuration lets through: one request per check token, the status per server.
check() { # NAME
    local url="http://127.0.0.1:${port_of[$1]}$FILE_PATH" line=("$1") name tok
    line+=("none=$(curl -s -o /dev/null -w '%{http_code}' "$url")")
    while read -r name tok; do
        line+=("$name=$(curl -s -o /dev/null -w '%{http_code}' \
            -H "Authorization: Bearer $tok" "$url")")
    done <"$work/check-tokens.txt"
    echo "${line[*]}" >>"$work/checks.txt"
    if [[ ${line[*]} != *" valid=200 "* ]]; then
        echo "run_webservers: $1 refuses a valid token: ${line[*]}" >&2
        cat "$work/$1/error.log" >&2 2>/dev/null || true
        exit 1
    fi
}
# CPU the shell's reaped children used, in clock ticks (/proc/PID/stat cutime + cstime): taken
# around wrk alone, it is the load generator's share of the box.
children_ticks() {
    local f
    read -r -a f <"/proc/$$/stat"
    echo $((f[15] + f[16]))
}
daemon_stats() {
    ctl stats | "$py" -c 'import json, sys
s = json.load(sys.stdin)
print(json.dumps({"hits": s["cache_hits"], "misses": s["cache_misses"]}))'
}
wrk_run() { # RUN_NAME SERVER TOKEN_FILE SECONDS [firstpass]   (RUN_NAME "" = not recorded)
    local run=$1 server=$2 file=$3 secs=$4 mode=${5:-} out=/dev/null dpid=0 w0 w1
    [[ $server == *jwtauthz ]] && dpid=$daemon_pid
    [[ -n $run ]] && out=$work/runs/$run.txt
    {
        if [[ -n $run ]]; then
            echo "CPU_BEFORE $("${stats[@]}" cpu "${sid_of[$server]}" "$dpid")"
            ((dpid == 0)) || echo "STATS_BEFORE $(daemon_stats)"
        fi
        w0=$(children_ticks)
        timeout $((secs + 30)) wrk -t"$WRK_THREADS" -c"$CONNS" -d"${secs}s" --timeout 10s \
            -s "$root/bench/rotate_tokens.lua" "http://127.0.0.1:${port_of[$server]}$FILE_PATH" \
            -- "$file" "$WRK_THREADS" $mode
        w1=$(children_ticks)
        if [[ -n $run ]]; then
            echo "CPU_AFTER $("${stats[@]}" cpu "${sid_of[$server]}" "$dpid")"
            ((dpid == 0)) || echo "STATS_AFTER $(daemon_stats)"
            echo "WRK_TICKS $((w1 - w0))"
        fi
    } >"$out"
}
perf_run() { # SERVER: a separate profiled run (not a measured one) of the server's processes
    # and, for a jwtauthz server, the daemon's: other processes on the box stay out of it.
    [[ $PERF == 1 ]] || return 0
    local pids
    pids=$(ps -o pid= -s "${sid_of[$1]}" | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
    [[ $1 == *jwtauthz ]] && pids+=",$daemon_pid"
    say "$1: perf record, ${DURATION}s (not measured)"
    wrk_run "" "$1" "$tokens" "$((DURATION + 2))" &
    local w=$!
    sleep 1
    perf record -q -g -F 999 -p "$pids" -o "$work/perf-$1.data" -- sleep "$DURATION" \
        >/dev/null 2>&1 || true
    wait "$w" || true
    perf report -i "$work/perf-$1.data" --no-children --sort comm,dso,sym --stdio 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -60 >"$work/perf-$1.txt" || true
    perf report -i "$work/perf-$1.data" --no-children --sort comm,dso --stdio 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -20 >"$work/perf-$1-dso.txt" || true
}
warm_up() { # SERVER
    say "$1: warm-up ${WARMUP_S}s on $WARMUP_TOKENS other tokens"
    wrk_run "" "$1" "$warm_tokens" "$WARMUP_S"
}
run() { # SERVER PHASE(cold|warm|"") REP [firstpass]: the run SERVER[-PHASE].REP
    local name=$1${2:+-$2}.$3
    say "$name: ${DURATION}s${4:+ (the first pass over $TOKENS tokens also timed on its own)}"
    wrk_run "$name" "$1" "$tokens" "$DURATION" "${4:-}"
}

cat >"$work/settings.json" <<JSON
{"duration_s": $DURATION, "warmup_s": $WARMUP_S, "reps": $REPS, "wrk_threads": $WRK_THREADS,
 "connections": $CONNS, "tokens": $TOKENS, "apache_threads": "2 x $APACHE_THREADS",
 "nginx_workers": $NGINX_WORKERS, "daemon_threads": $DAEMON_THREADS, "cpus": $(nproc)}
JSON
: >"$work/checks.txt"
start_daemon
if [[ ,$ONLY, == *,apache,* ]]; then
    start_server apache jwtauthz
    start_server apache openidc
    start_server apache none
    warm_up apache-jwtauthz
    warm_up apache-openidc
    warm_up apache-none
    for rep in $(seq "$REPS"); do
        # "cold": a daemon with no decision cached, so the run starts with a first pass of
        # misses. mod_auth_openidc keeps no validated JWTs: its two runs measure the same thing.
        ctl flush >/dev/null
        run apache-jwtauthz cold "$rep" firstpass
        run apache-openidc cold "$rep" firstpass
        run apache-jwtauthz warm "$rep"
        run apache-openidc warm "$rep"
        # Not judged: Apache's own cost of the file, to see what each module adds to it.
        run apache-none "" "$rep"
    done
    perf_run apache-jwtauthz
    perf_run apache-openidc
    stop_server apache-jwtauthz
    stop_server apache-openidc
    stop_server apache-none
fi
if [[ ,$ONLY, == *,nginx,* ]]; then
    start_server nginx none
    start_server nginx jwtauthz
    start_server nginx jwtauthzcache
    warm_up nginx-none
    warm_up nginx-jwtauthz
    warm_up nginx-jwtauthzcache
    for rep in $(seq "$REPS"); do
        ctl flush >/dev/null
        run nginx-jwtauthz cold "$rep" firstpass
        run nginx-jwtauthz warm "$rep"
        run nginx-none "" "$rep"
        # jwtauthz_cache: a flush empties it too (the epoch moves), so its cold run starts with
        # the daemon's cache and its own both empty.
        ctl flush >/dev/null
        run nginx-jwtauthzcache cold "$rep" firstpass
        run nginx-jwtauthzcache warm "$rep"
    done
    perf_run nginx-jwtauthz
    perf_run nginx-jwtauthzcache
    perf_run nginx-none
    stop_server nginx-none
    stop_server nginx-jwtauthz
    stop_server nginx-jwtauthzcache
fi
stop_daemon

echo
echo "What each configuration answers (HTTP status per check token; none = no Authorization):"
column -t "$work/checks.txt" 2>/dev/null | sed 's/^/  /' || sed 's/^/  /' "$work/checks.txt"
rc=0
"${stats[@]}" report "$work" || rc=$?
for f in "$work"/perf-*.txt; do
    [[ -s $f ]] || continue
    echo
    echo "perf, $(basename "$f" .txt) (the server's and the daemon's processes, self time):"
    head -30 "$f"
done
exit "$rc"
