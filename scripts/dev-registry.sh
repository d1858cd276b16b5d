#!/usr/bin/env bash
# Real OCI registries on 127.0.0.1 for ferry's tests and for trying ferry by hand.
#
#   scripts/dev-registry.sh install                 install what the tests need (Debian/apt)
#   scripts/dev-registry.sh start VARIANT DIR [--token-ttl S] [--token-expires-in S] [--proxy URL]
#                                                   (--proxy: a pull-through cache of URL)
#   scripts/dev-registry.sh certs DIR               a CA and a 127.0.0.1 server certificate in DIR
#   scripts/dev-registry.sh front DIR UPSTREAM MAX_BODY   nginx on 127.0.0.1 in front of UPSTREAM
#                                                   (host:port), refusing bodies over MAX_BODY (413)
#   scripts/dev-registry.sh stop DIR
#
# VARIANT is one of: plain, basic (htpasswd), tls, tls-basic, token (bearer tokens from
# scripts/token-server.py). `start` writes DIR/env (shell KEY=VALUE lines) and prints the same
# lines on stdout:
#   FERRY_TEST_REGISTRY=127.0.0.1:PORT   FERRY_TEST_SCHEME=http|https
#   FERRY_TEST_USER / FERRY_TEST_PASSWORD (auth variants)
#   FERRY_TEST_CA, FERRY_TEST_CERT_DIR (tls variants: the CA file, and a skopeo --cert-dir)
#
# The registry is the CNCF distribution registry from Debian's `docker-registry` package, run
# with a config of our own: it binds 127.0.0.1 only, on a port the kernel picks. The package's own
# service (port 5000, all interfaces) is never used. Processes are stopped by recorded PID only.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "dev-registry: $*" >&2; exit 1; }

cmd_install() {
    local need=()
    command -v docker-registry >/dev/null || need+=(docker-registry)
    command -v skopeo >/dev/null || need+=(skopeo)
    command -v rhash >/dev/null || need+=(rhash)
    command -v htpasswd >/dev/null || need+=(apache2-utils)
    command -v umoci >/dev/null || need+=(umoci)
    command -v openssl >/dev/null || need+=(openssl)
    command -v curl >/dev/null || need+=(curl)
    command -v strace >/dev/null || need+=(strace)
    command -v python3 >/dev/null || need+=(python3)
    # Signature tests make and check keys and signatures independently of ferry's code, with
    # Debian's own modules (run by /usr/bin/python3, whatever python3 comes first in PATH).
    dpkg-query -W python3-cryptography >/dev/null 2>&1 || need+=(python3-cryptography)
    dpkg-query -W python3-nacl >/dev/null 2>&1 || need+=(python3-nacl)
    [ -x /usr/bin/time ] || need+=(time)
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
    if [ ${#need[@]} -eq 0 ]; then
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "missing packages: ${need[*]}; install them as root (apt-get install ${need[*]})"
        sudo=(sudo)
    fi
    echo "dev-registry: installing ${need[*]}" >&2
    # Packages with a service (nginx) must not start it: nothing of ours listens beyond
    # 127.0.0.1, and the tests start their own private processes.
    local policy=/usr/sbin/policy-rc.d made_policy=no
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod +x "$policy"
        made_policy=yes
    fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
    [ $made_policy = yes ] && "${sudo[@]}" rm -f "$policy"
    return 0
}

# A CA and a server certificate for 127.0.0.1 and localhost, valid two days.
make_certs() {
    local d=$1
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ferry-test-ca" \
        -keyout "$d/ca.key" -out "$d/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -extfile "$d/ext.cnf" -out "$d/server.crt" 2>/dev/null
    # skopeo's --cert-dir reads every *.crt as a CA and pairs *.key with a client *.cert, so
    # it gets a directory holding the CA alone.
    mkdir -p "$d/skopeo"
    cp "$d/ca.crt" "$d/skopeo/ca.crt"
}

# Waits until a file holds a line matching a sed pattern; prints the captured group.
wait_for() {
    local file=$1 pattern=$2 pid=$3 i value
    for i in $(seq 1 200); do
        if [ -f "$file" ]; then
            value=$(sed -n "$pattern" "$file" | head -n 1)
            if [ -n "$value" ]; then
                echo "$value"
                return 0
            fi
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "dev-registry: process $pid did not come up; log follows:" >&2
    tail -n 20 "$file" >&2 || true
    return 1
}

cmd_start() {
    [ $# -ge 2 ] || die "usage: start VARIANT DIR [--token-ttl S] [--token-expires-in S] [--proxy URL]"
    local variant=$1 dir=$2
    shift 2
    local token_ttl=300 token_expires_in=0 proxy=""
    while [ $# -gt 0 ]; do
        case $1 in
        --token-ttl) token_ttl=$2; shift 2 ;;
        # A pull-through cache of another registry.
        --proxy) proxy=$2; shift 2 ;;
        --token-expires-in) token_expires_in=$2; shift 2 ;;
        *) die "unknown option $1" ;;
        esac
    done
    command -v docker-registry >/dev/null || die "docker-registry is not installed: run scripts/dev-registry.sh install"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ ! -f "$dir/pid" ] || die "$dir already has a running registry (stop it first)"
    trap 'cmd_stop "$dir" >/dev/null 2>&1 || true' ERR

    local scheme=http tls=no basic=no token=no
    case $variant in
    plain) ;;
    basic) basic=yes ;;
    tls) tls=yes ;;
    tls-basic) tls=yes; basic=yes ;;
    token) token=yes ;;
    *) die "unknown variant '$variant' (plain, basic, tls, tls-basic, token)" ;;
    esac

    local user="" password=""
    if [ $basic = yes ] || [ $token = yes ]; then
        user=ferry
        password=$(openssl rand -hex 12)
    fi

    {
        echo "version: 0.1"
        # The access log (on stderr, in DIR/log) lets tests count what a client really sent.
        echo "log: {level: info, accesslog: {disabled: false}}"
        echo "storage:"
        echo "  filesystem: {rootdirectory: $dir/data}"
        echo "  delete: {enabled: true}"
        echo "  maintenance: {uploadpurging: {enabled: false}}"
        echo "http:"
        echo "  addr: 127.0.0.1:0"
        echo "  secret: ferry-test-secret"
        [ -z "$proxy" ] || echo "proxy: {remoteurl: $proxy}"
        if [ $tls = yes ]; then
            make_certs "$dir/certs"
            echo "  tls: {certificate: $dir/certs/server.crt, key: $dir/certs/server.key}"
            scheme=https
        fi
        if [ $basic = yes ]; then
            htpasswd -Bbn "$user" "$password" >"$dir/htpasswd"
            echo "auth:"
            echo "  htpasswd: {realm: ferry-test, path: $dir/htpasswd}"
        fi
        if [ $token = yes ]; then
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ferry-token-signer" \
                -keyout "$dir/token.key" -out "$dir/token.crt" 2>/dev/null
            python3 "$here/token-server.py" --port-file "$dir/token.port" \
                --key "$dir/token.key" --cert "$dir/token.crt" \
                --issuer ferry-test-issuer --service ferry-test-registry \
                --user "$user:$password" --anonymous-pull \
                --ttl "$token_ttl" --expires-in "$token_expires_in" \
                >"$dir/token.log" 2>&1 &
            echo $! >"$dir/token.pid"
            local tport
            tport=$(wait_for "$dir/token.port" 's/^\([0-9][0-9]*\)$/\1/p' "$(cat "$dir/token.pid")")
            echo "auth:"
            echo "  token:"
            echo "    realm: http://127.0.0.1:$tport/token"
            echo "    service: ferry-test-registry"
            echo "    issuer: ferry-test-issuer"
            echo "    rootcertbundle: $dir/token.crt"
        fi
    } >"$dir/config.yml"

    docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
    local port
    port=$(wait_for "$dir/log" 's/.*msg="listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$(cat "$dir/pid")")

    # The log line comes just before the listener accepts; wait until /v2/ answers.
    local curl_opts=(-s -o /dev/null -w '%{http_code}')
    [ $tls = yes ] && curl_opts+=(--cacert "$dir/certs/ca.crt")
    local code="" i
    for i in $(seq 1 100); do
        code=$(curl "${curl_opts[@]}" --noproxy '*' "$scheme://127.0.0.1:$port/v2/" || true)
        case $code in 200 | 401) break ;; esac
        sleep 0.05
    done
    case $code in 200 | 401) ;; *) die "registry on port $port does not answer /v2/ (last status '$code')" ;; esac

    {
        echo "FERRY_TEST_REGISTRY=127.0.0.1:$port"
        echo "FERRY_TEST_SCHEME=$scheme"
        if [ -n "$user" ]; then
            echo "FERRY_TEST_USER=$user"
            echo "FERRY_TEST_PASSWORD=$password"
        fi
        if [ $tls = yes ]; then
            echo "FERRY_TEST_CA=$dir/certs/ca.crt"
            echo "FERRY_TEST_CERT_DIR=$dir/certs/skopeo"
        fi
        true
    } >"$dir/env"
    trap - ERR
    cat "$dir/env"
}

# nginx in front of a registry, refusing request bodies over MAX_BODY with 413 as proxies in
# front of real registries do. Writes DIR/env like `start`.
cmd_front() {
    [ $# -eq 3 ] || die "usage: front DIR UPSTREAM MAX_BODY"
    local dir=$1 upstream=$2 max_body=$3 nginx port user=""
    nginx=$(command -v nginx || echo /usr/sbin/nginx)
    [ -x "$nginx" ] || die "nginx is not installed: run scripts/dev-registry.sh install"
    mkdir -p "$dir/nginx"
    dir=$(cd "$dir" && pwd)
    [ ! -f "$dir/nginx.pid" ] || die "$dir already has a running nginx (stop it first)"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    [ "$(id -u)" -eq 0 ] && user="user root;"
    cat >"$dir/nginx/nginx.conf" <<EOF
worker_processes 1;
$user
error_log $dir/nginx/error.log;
pid $dir/nginx/nginx.pid;
events { worker_connections 256; }
http {
    access_log $dir/nginx/access.log;
    client_body_temp_path $dir/nginx/body;
    proxy_temp_path $dir/nginx/proxy;
    fastcgi_temp_path $dir/nginx/fastcgi;
    uwsgi_temp_path $dir/nginx/uwsgi;
    scgi_temp_path $dir/nginx/scgi;
    server {
        listen 127.0.0.1:$port;
        client_max_body_size $max_body;
        location / {
            proxy_pass http://$upstream;
            proxy_set_header Host \$http_host;
            proxy_http_version 1.1;
            proxy_request_buffering off;
            proxy_buffering off;
        }
    }
}
EOF
    "$nginx" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -g 'daemon off;' >"$dir/nginx/out.log" 2>&1 &
    echo $! >"$dir/nginx.pid"
    local code="" i
    for i in $(seq 1 100); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' "http://127.0.0.1:$port/v2/" || true)
        case $code in 200 | 401) break ;; esac
        sleep 0.05
    done
    case $code in
    200 | 401) ;;
    *)
        cat "$dir/nginx/out.log" "$dir/nginx/error.log" >&2 2>/dev/null || true
        die "nginx on port $port does not answer /v2/ (last status '$code')"
        ;;
    esac
    printf 'FERRY_TEST_REGISTRY=127.0.0.1:%s\nFERRY_TEST_SCHEME=http\n' "$port" | tee "$dir/env"
}

# Stops one recorded process, after checking that the PID still belongs to it.
stop_pid() {
    local pidfile=$1 expect=$2 pid i
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$expect"; then
        kill "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
            sleep 0.05
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

cmd_stop() {
    [ $# -eq 1 ] || die "usage: stop DIR"
    local dir=$1
    stop_pid "$dir/pid" docker-registry
    stop_pid "$dir/token.pid" token-server.py
    stop_pid "$dir/nginx.pid" nginx
}

case ${1:-} in
install) shift; cmd_install "$@" ;;
# A CA and a server certificate for 127.0.0.1 in DIR, for servers a test starts itself.
certs) shift; [ $# -eq 1 ] || die "usage: certs DIR"; make_certs "$1" ;;
start) shift; cmd_start "$@" ;;
front) shift; cmd_front "$@" ;;
stop) shift; cmd_stop "$@" ;;
*) die "usage: $0 install | certs DIR | start VARIANT DIR [options] | front DIR UPSTREAM MAX_BODY | stop DIR" ;;
esac
