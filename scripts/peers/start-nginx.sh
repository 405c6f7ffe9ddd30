#!/usr/bin/env bash
# start-nginx.sh STATE_DIR
# Starts nginx on 127.0.0.1 serving the directory STATE_DIR/nginx/www (static files, Range support).
# Env:
#   NGINX_PORT   port to listen on (default: a free port)
# Writes STATE_DIR/nginx.env (NGINX_URL, NGINX_ROOT, NGINX_PORT, NGINX_PID), nginx.url and nginx.pid; exits 0 when ready.
# nginx runs in the foreground of its own session (daemon off), so the recorded PID is the master;
# its pid, temp and log files all live under STATE_DIR/nginx. Debian's nginx service is never started.
# Idempotent: if the nginx recorded in STATE_DIR is still running and answering, it just re-prints the env.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
STATE=${1:?usage: start-nginx.sh STATE_DIR}
mkdir -p "$STATE"; STATE=$(cd "$STATE" && pwd)

if pid_alive "$STATE/nginx.pid" && [ -f "$STATE/nginx.env" ]; then
  . "$STATE/nginx.env"
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$NGINX_URL/")" != 000 ]; then
    log "nginx already running: $NGINX_URL"; cat "$STATE/nginx.env"; exit 0
  fi
fi
bash "$SERVICES_DIR/stop.sh" "$STATE" nginx >/dev/null 2>&1 || true

t_install=$(now_ms)
command -v curl >/dev/null || apt_install curl ca-certificates
[ -x /usr/sbin/nginx ] || apt_install nginx
[ -x /usr/sbin/nginx ] || die "nginx not installed"
t_install=$(( $(now_ms) - t_install ))

PORT=${NGINX_PORT:-$(free_port)}
port_busy "$PORT" && die "port $PORT is already in use"
URL="http://127.0.0.1:$PORT"
DIR=$STATE/nginx
mkdir -p "$DIR/www" "$DIR/tmp" "$DIR/logs"
CONF=$DIR/nginx.conf
# As root, workers run as root too, so they can read a www directory under any private path.
USER_LINE=""; [ "$(id -u)" = 0 ] && USER_LINE="user root;"
cat > "$CONF" <<CONF
daemon off;
$USER_LINE
master_process on;
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log $DIR/logs/access.log;
  client_body_temp_path $DIR/tmp/body;
  proxy_temp_path $DIR/tmp/proxy;
  fastcgi_temp_path $DIR/tmp/fastcgi;
  uwsgi_temp_path $DIR/tmp/uwsgi;
  scgi_temp_path $DIR/tmp/scgi;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$PORT;
    root $DIR/www;
    location / { }
  }
}
CONF
/usr/sbin/nginx -t -p "$DIR" -c "$CONF" >/dev/null 2>&1 || { /usr/sbin/nginx -t -p "$DIR" -c "$CONF" || true; die "invalid nginx configuration"; }

t_start=$(now_ms)
pid=$(start_bg "$STATE/nginx.pid" "$STATE/nginx.log" /usr/sbin/nginx -p "$DIR" -c "$CONF")
wait_http "$URL/" 30 "$STATE/nginx.pid" || { tail -20 "$STATE/nginx.log" "$DIR/logs/error.log" >&2 || true; die "nginx did not become ready"; }
t_start=$(( $(now_ms) - t_start ))
ENVF=$STATE/nginx.env
{
  echo "NGINX_URL=$URL"; echo "NGINX_ROOT=$DIR/www"; echo "NGINX_PORT=$PORT"; echo "NGINX_PID=$pid"
  echo "NGINX_STARTUP_MS=$t_start"; echo "NGINX_INSTALL_MS=$t_install"
} > "$ENVF.tmp"
mv "$ENVF.tmp" "$ENVF"
echo "$URL" > "$STATE/nginx.url"
log "nginx ready: $URL serving $DIR/www (pid $pid, ready in ${t_start} ms, install/check ${t_install} ms)"
cat "$ENVF"
